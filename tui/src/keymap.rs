//! Key bindings: the embedded default keymap, a user file merged over it, and the help
//! text generated from the same bindings. Read-only mode strips every mutating action.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// The default bindings, embedded.
pub const DEFAULT_KEYMAP: &str = include_str!("../keymap.default.toml");

/// What a key can ask for outside text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    Quit,
    Help,
    CommandMode,
    FilterMode,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    ToggleDetail,
    Refresh,
    SortNext,
    SortPrevious,
    SortReverse,
    ViewInstances,
    ViewFindings,
    ViewAccounts,
    ViewCases,
    ViewApprovals,
    ViewEvidence,
    ViewImages,
    ViewHosts,
    ResolveFinding,
    AcquireInstance,
    ApproveContainment,
    RejectContainment,
    RollbackContainment,
    ToggleLegalHold,
    VerifyCase,
    ExportReport,
    BuildImage,
    LaunchHost,
    OpenSession,
    TerminateHost,
    NextPanel,
    Related,
}

impl KeyAction {
    /// Whether the command changes anything in AWS (and so is gone in read-only mode).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Self::ResolveFinding
                | Self::AcquireInstance
                | Self::ApproveContainment
                | Self::RejectContainment
                | Self::RollbackContainment
                | Self::ToggleLegalHold
                | Self::BuildImage
                | Self::LaunchHost
                | Self::OpenSession
                | Self::TerminateHost
        )
    }

    /// One line for the help screen.
    pub fn description(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::Help => "show or hide this help",
            Self::CommandMode => {
                "command mode: a view by name (:hosts :images :evidence :cases ...), :theme NAME"
            }
            Self::FilterMode => {
                "filter rows (text, /regex/, !not, tag:K=V, account:, region:, state:, sev>=HIGH)"
            }
            Self::Back => "close the panel, clear the filter, leave a mode",
            Self::Up => "previous row",
            Self::Down => "next row",
            Self::PageUp => "page up",
            Self::PageDown => "page down",
            Self::Top => "first row",
            Self::Bottom => "last row",
            Self::ToggleDetail => "show or hide the detail panel",
            Self::Refresh => "refresh now",
            Self::SortNext => "sort by the next column",
            Self::SortPrevious => "sort by the previous column",
            Self::SortReverse => "reverse the sort order",
            Self::ViewInstances => "instances view",
            Self::ViewFindings => "findings view",
            Self::ViewAccounts => "accounts view",
            Self::ViewCases => "cases view (enter opens a case, esc goes back)",
            Self::ViewApprovals => "approvals view: cases waiting for containment, direct requests",
            Self::ViewEvidence => {
                "evidence view: every artifact, its hash, retention and legal hold"
            }
            Self::ViewImages => "images view: the SIFT pipeline's builds, their state and AMIs",
            Self::ViewHosts => {
                "hosts view: analysis hosts with their case, evidence, SSM reachability, cost"
            }
            Self::BuildImage => "start a SIFT image build (asks first)",
            Self::LaunchHost => {
                "launch an analysis host for the open or selected case, with its evidence (asks first)"
            }
            Self::OpenSession => {
                "open a shell on the selected analysis host (the terminal comes back on exit)"
            }
            Self::TerminateHost => {
                "terminate the selected analysis host (type the instance id to confirm)"
            }
            Self::ResolveFinding => "mark the selected finding RESOLVED (asks first)",
            Self::AcquireInstance => {
                "acquire memory and disk of the selected instance, or a finding's (asks first)"
            }
            Self::ApproveContainment => {
                "approve the selected containment (type the instance id to confirm)"
            }
            Self::RejectContainment => "refuse the selected containment (with a reason)",
            Self::RollbackContainment => {
                "roll back the case's containment (type the instance id to confirm)"
            }
            Self::ToggleLegalHold => {
                "place or remove the legal hold on the selected artifact (asks first)"
            }
            Self::VerifyCase => "verify the open case: re-hash its evidence, check its ledger",
            Self::ExportReport => {
                "write the open case's report (Markdown) to the working directory"
            }
            Self::NextPanel => {
                "the case view's next panel (artifacts, custody ledger, analysis, verification); beside a list, scroll its details"
            }
            Self::Related => {
                "related rows: an instance's findings, cases, evidence and hosts (a finding's instance and the same), a case's evidence, hosts and instance, an account's instances and findings; the view's key opens one"
            }
        }
    }
}

/// A key with its modifiers, as the keymap names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyName,
    pub ctrl: bool,
    pub alt: bool,
}

/// The key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyName {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Backspace,
    F(u8),
}

impl Key {
    /// The key of a terminal event. Shift is part of the character (`G`), never a modifier.
    pub fn from_event(event: &KeyEvent) -> Option<Self> {
        let code = match event.code {
            KeyCode::Char(' ') => KeyName::Char(' '),
            KeyCode::Char(c) => KeyName::Char(c),
            KeyCode::Enter => KeyName::Enter,
            KeyCode::Esc => KeyName::Esc,
            KeyCode::Tab => KeyName::Tab,
            KeyCode::BackTab => KeyName::BackTab,
            KeyCode::Up => KeyName::Up,
            KeyCode::Down => KeyName::Down,
            KeyCode::Left => KeyName::Left,
            KeyCode::Right => KeyName::Right,
            KeyCode::PageUp => KeyName::PageUp,
            KeyCode::PageDown => KeyName::PageDown,
            KeyCode::Home => KeyName::Home,
            KeyCode::End => KeyName::End,
            KeyCode::Backspace => KeyName::Backspace,
            KeyCode::F(n) => KeyName::F(n),
            _ => return None,
        };
        Some(Self {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// A plain character key.
    pub fn char(c: char) -> Self {
        Self {
            code: KeyName::Char(c),
            ctrl: false,
            alt: false,
        }
    }

    /// Parses a key as the keymap file writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut key = Self {
            code: KeyName::Esc,
            ctrl: false,
            alt: false,
        };
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                key.ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                key.alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        key.code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyName::Char(c),
            _ => match rest {
                "enter" => KeyName::Enter,
                "esc" => KeyName::Esc,
                "tab" => KeyName::Tab,
                "backtab" => KeyName::BackTab,
                "up" => KeyName::Up,
                "down" => KeyName::Down,
                "left" => KeyName::Left,
                "right" => KeyName::Right,
                "pgup" => KeyName::PageUp,
                "pgdown" => KeyName::PageDown,
                "home" => KeyName::Home,
                "end" => KeyName::End,
                "backspace" => KeyName::Backspace,
                "space" => KeyName::Char(' '),
                f if f.starts_with('f')
                    && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
                {
                    KeyName::F(f[1..].parse().unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "'{text}' is not a key: use a character, or a name such as enter, esc, pgdown, f1, with ctrl- or alt-"
                    ));
                }
            },
        };
        Ok(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyName::Char(' ') => f.write_str("space"),
            KeyName::Char(c) => write!(f, "{c}"),
            KeyName::F(n) => write!(f, "f{n}"),
            other => f.write_str(match other {
                KeyName::Enter => "enter",
                KeyName::Esc => "esc",
                KeyName::Tab => "tab",
                KeyName::BackTab => "backtab",
                KeyName::Up => "up",
                KeyName::Down => "down",
                KeyName::Left => "left",
                KeyName::Right => "right",
                KeyName::PageUp => "pgup",
                KeyName::PageDown => "pgdown",
                KeyName::Home => "home",
                KeyName::End => "end",
                KeyName::Backspace => "backspace",
                KeyName::Char(_) | KeyName::F(_) => "",
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

/// Errors in a keymap file, naming the file and the bad entry.
#[derive(Debug, thiserror::Error)]
#[error("the keymap '{source_name}' is not valid: {message}")]
pub struct KeymapError {
    pub source_name: String,
    pub message: String,
}

/// The bindings in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<Key, KeyAction>,
    /// Mutating bindings removed by read-only mode, kept only to tell the operator why
    /// their key does nothing.
    refused: BTreeMap<Key, KeyAction>,
}

impl Keymap {
    /// The embedded default, with `user` (a keymap file's text) merged over it; mutating
    /// commands removed when `read_only`.
    pub fn load(user: Option<(&str, &str)>, read_only: bool) -> Result<Self, KeymapError> {
        let mut bindings = BTreeMap::new();
        for (name, text) in std::iter::once(("default keymap", DEFAULT_KEYMAP)).chain(user) {
            let bad = |message: String| KeymapError {
                source_name: name.to_owned(),
                message,
            };
            let file: KeymapFile = toml::from_str(text).map_err(|err| bad(err.to_string()))?;
            for (key, command) in file.keys {
                let key = Key::parse(&key).map_err(bad)?;
                if command == "none" {
                    bindings.remove(&key);
                    continue;
                }
                let command: KeyAction =
                    Deserialize::deserialize(serde::de::value::StrDeserializer::<
                        serde::de::value::Error,
                    >::new(&command))
                    .map_err(|_| {
                        bad(format!(
                            "'{command}' is not an action (see the default keymap for the names)"
                        ))
                    })?;
                bindings.insert(key, command);
            }
        }
        let mut refused = BTreeMap::new();
        if read_only {
            bindings.retain(|key, command| {
                if command.is_mutating() {
                    refused.insert(*key, *command);
                }
                !command.is_mutating()
            });
        }
        Ok(Self { bindings, refused })
    }

    /// Reads `keymap.toml` from `config_dir` when there is one.
    pub fn load_from_dir(config_dir: Option<&Path>, read_only: bool) -> Result<Self, KeymapError> {
        let user = config_dir.map(|d| d.join("keymap.toml")).and_then(|path| {
            std::fs::read_to_string(&path)
                .ok()
                .map(|text| (path.display().to_string(), text))
        });
        Self::load(
            user.as_ref()
                .map(|(name, text)| (name.as_str(), text.as_str())),
            read_only,
        )
    }

    /// The command bound to `key`.
    pub fn command(&self, key: &Key) -> Option<KeyAction> {
        self.bindings.get(key).copied()
    }

    /// The mutating command `key` would run if read-only mode had not removed it.
    pub fn refused(&self, key: &Key) -> Option<KeyAction> {
        self.refused.get(key).copied()
    }

    /// Every command with its keys, in command order: the help screen's content.
    pub fn help(&self) -> Vec<(KeyAction, Vec<Key>)> {
        let mut by_command: BTreeMap<KeyAction, Vec<Key>> = BTreeMap::new();
        for (key, command) in &self.bindings {
            by_command.entry(*command).or_default().push(*key);
        }
        by_command.into_iter().collect()
    }

    /// The first key bound to `command`, for hints in the footer.
    pub fn key_for(&self, command: KeyAction) -> Option<Key> {
        // A plain key reads better in a hint than a chord: `q` rather than `ctrl-c`.
        self.bindings
            .iter()
            .filter(|(_, c)| **c == command)
            .map(|(k, _)| *k)
            .min_by_key(|k| (k.ctrl || k.alt, !matches!(k.code, KeyName::Char(_))))
    }

    /// Whether any binding asks for a mutating command.
    #[cfg(test)]
    pub fn has_mutating(&self) -> bool {
        self.bindings.values().any(|c| c.is_mutating())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_keymap_parses_and_binds_the_essentials() {
        let keymap = Keymap::load(None, false).expect("default keymap");
        assert_eq!(keymap.command(&Key::char('q')), Some(KeyAction::Quit));
        assert_eq!(keymap.command(&Key::char('G')), Some(KeyAction::Bottom));
        assert_eq!(
            keymap.command(&Key::parse("ctrl-c").expect("key")),
            Some(KeyAction::Quit)
        );
        assert_eq!(
            keymap.command(&Key::parse("enter").expect("key")),
            Some(KeyAction::ToggleDetail)
        );
        assert!(keymap.has_mutating());
    }

    #[test]
    fn read_only_removes_every_mutating_binding() {
        let keymap = Keymap::load(None, true).expect("default keymap");
        assert!(!keymap.has_mutating());
        assert_eq!(keymap.command(&Key::char('R')), None);
        assert_eq!(keymap.command(&Key::char('a')), None);
        assert_eq!(
            keymap.refused(&Key::char('a')),
            Some(KeyAction::AcquireInstance),
            "remembered to say why the key does nothing"
        );
        assert!(
            keymap
                .help()
                .iter()
                .all(|(command, _)| !command.is_mutating())
        );
    }

    #[test]
    fn a_user_file_rebinds_and_unbinds() {
        let user = "[keys]\n\"x\" = \"quit\"\n\"q\" = \"none\"\n";
        let keymap = Keymap::load(Some(("user.toml", user)), false).expect("merged");
        assert_eq!(keymap.command(&Key::char('x')), Some(KeyAction::Quit));
        assert_eq!(keymap.command(&Key::char('q')), None);
    }

    #[test]
    fn bad_entries_are_named() {
        let err = Keymap::load(Some(("user.toml", "[keys]\n\"x\" = \"explode\"\n")), false)
            .expect_err("bad");
        assert!(
            err.to_string().contains("'explode'") && err.to_string().contains("user.toml"),
            "{err}"
        );
        let err = Keymap::load(
            Some(("user.toml", "[keys]\n\"ctrl-nope\" = \"quit\"\n")),
            false,
        )
        .expect_err("bad");
        assert!(err.to_string().contains("'ctrl-nope'"), "{err}");
    }

    #[test]
    fn keys_round_trip_through_their_names() {
        for name in [
            "q",
            "G",
            "ctrl-c",
            "alt-x",
            "enter",
            "pgdown",
            "f5",
            "space",
            "ctrl-alt-d",
        ] {
            assert_eq!(Key::parse(name).expect("parses").to_string(), name);
        }
    }

    #[test]
    fn help_lists_every_bound_command() {
        let keymap = Keymap::load(None, false).expect("default");
        let help = keymap.help();
        let quit = help
            .iter()
            .find(|(c, _)| *c == KeyAction::Quit)
            .expect("quit listed");
        assert_eq!(quit.1.len(), 2, "q and ctrl-c");
    }
}
