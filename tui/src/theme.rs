//! Themes: a named palette, then semantic roles with fallbacks; four shipped in the binary,
//! user files found in the configuration directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The themes shipped in the binary, by name.
pub use irf_themes::SHIPPED;

/// Errors loading a theme, naming the theme and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("no theme named '{name}': use one of {shipped}, or put {name}.toml in '{dir}'")]
    Unknown {
        name: String,
        shipped: String,
        dir: String,
    },
    #[error("the theme '{name}' is not valid: {message}")]
    Invalid { name: String, message: String },
    #[error("cannot read the theme file '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    palette: BTreeMap<String, String>,
    #[serde(default)]
    roles: BTreeMap<String, RoleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

/// A loaded theme: every role resolved to a style.
#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    pub description: String,
    roles: BTreeMap<String, Style>,
}

impl Theme {
    /// Parses theme text; `name` only names it in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid {
            name: name.to_owned(),
            message,
        };
        let file: ThemeFile = toml::from_str(text).map_err(|err| invalid(err.to_string()))?;
        let color = |value: &str| -> Result<Color, ThemeError> {
            let resolved = file.palette.get(value).map_or(value, String::as_str);
            parse_color(resolved).ok_or_else(|| {
                invalid(format!("'{value}' is neither a palette name nor a colour (use \"#rrggbb\" or a colour name)"))
            })
        };
        let mut roles = BTreeMap::new();
        for (role, spec) in &file.roles {
            let mut style = Style::new();
            if let Some(fg) = &spec.fg {
                style = style.fg(color(fg)?);
            }
            if let Some(bg) = &spec.bg {
                style = style.bg(color(bg)?);
            }
            for (on, modifier) in [
                (spec.bold, Modifier::BOLD),
                (spec.italic, Modifier::ITALIC),
                (spec.underline, Modifier::UNDERLINED),
                (spec.reversed, Modifier::REVERSED),
            ] {
                if on {
                    style = style.add_modifier(modifier);
                }
            }
            roles.insert(role.clone(), style);
        }
        Ok(Self {
            name: file.name,
            description: file.description,
            roles,
        })
    }

    /// The theme called `name`: a user file in `user_dir` first, then a shipped one.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Self, ThemeError> {
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return Self::parse(name, &text),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ThemeError::Read { path, source }),
            }
        }
        SHIPPED
            .iter()
            .find(|(shipped, _)| *shipped == name)
            .map(|(_, text)| Self::parse(name, text))
            .unwrap_or_else(|| {
                Err(ThemeError::Unknown {
                    name: name.to_owned(),
                    shipped: SHIPPED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    dir: user_dir
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|| "the themes directory".into()),
                })
            })
    }

    /// The style of `role`, falling back to its parent roles and then to `text`.
    pub fn style(&self, role: &str) -> Style {
        let mut key = role;
        loop {
            if let Some(style) = self.roles.get(key) {
                return *style;
            }
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => return self.roles.get("text").copied().unwrap_or_default(),
            }
        }
    }
}

fn parse_color(value: &str) -> Option<Color> {
    if let Some(hex) = value.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some(Color::Rgb(channel(0)?, channel(2)?, channel(4)?));
    }
    value.parse::<Color>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_theme_loads_and_defines_every_role() {
        let reference = Theme::parse("default-dark", SHIPPED[0].1).expect("default parses");
        for (name, text) in SHIPPED {
            let theme = Theme::parse(name, text).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(theme.name, name, "the file's name matches");
            assert!(!theme.description.is_empty(), "{name} describes itself");
            for role in reference.roles.keys() {
                assert!(theme.roles.contains_key(role), "{name} lacks role {role}");
            }
        }
    }

    #[test]
    fn roles_fall_back_to_parents_then_text() {
        let theme = Theme::parse(
            "t",
            "name = \"t\"\n[palette]\nred = \"#ff0000\"\n[roles]\n\"text\" = { fg = \"white\" }\n\"severity\" = { fg = \"red\" }\n",
        )
        .expect("parses");
        assert_eq!(
            theme.style("severity.critical").fg,
            Some(Color::Rgb(255, 0, 0))
        );
        assert_eq!(theme.style("table.header").fg, Some(Color::White));
    }

    #[test]
    fn bad_colours_and_names_are_named() {
        let err = Theme::parse(
            "t",
            "name = \"t\"\n[roles]\n\"text\" = { fg = \"chartreuse-ish\" }\n",
        )
        .expect_err("bad");
        assert!(err.to_string().contains("'chartreuse-ish'"), "{err}");
        let err = Theme::load("no-such-theme", None).expect_err("unknown");
        assert!(
            err.to_string().contains("'no-such-theme'") && err.to_string().contains("colorblind"),
            "{err}"
        );
    }

    #[test]
    fn a_user_file_wins_over_a_shipped_theme() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("light.toml"),
            "name = \"light\"\ndescription = \"mine\"\n",
        )
        .expect("write");
        let theme = Theme::load("light", Some(dir.path())).expect("loads");
        assert_eq!(theme.description, "mine");
    }
}
