//! Keys by mode: the normal mode's bindings, the help's scrolling, a dialog's answer, the
//! filter and command lines as they are typed, and a typed prompt's text.

use super::*;

impl App {
    pub(super) fn key(&mut self, key: Key) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => match self.keymap.command(&key) {
                Some(command) => self.command(command),
                None => {
                    if let Some(refused) = self.keymap.refused(&key) {
                        self.status = Some(Status::Error(format!(
                            "read-only mode: '{key}' is off ({}); nothing can be changed until irf is started without --read-only",
                            refused.description()
                        )));
                    }
                    vec![]
                }
            },
            // Movement keys scroll the help; any other key closes it.
            Mode::Help { scroll } => {
                match self.keymap.command(&key) {
                    Some(KeyAction::Down | KeyAction::PageDown) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_add(1),
                        };
                    }
                    Some(KeyAction::Up | KeyAction::PageUp) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_sub(1),
                        };
                    }
                    _ => {}
                }
                vec![]
            }
            Mode::Confirm(mut confirmation) => {
                // The arrows scroll what is asked: nothing it says may go unread.
                if let Some(scroll) = scrolled(confirmation.scroll, &key) {
                    confirmation.scroll = scroll;
                    self.mode = Mode::Confirm(confirmation);
                    return vec![];
                }
                if self.read_only && confirmation.effect.is_mutating() {
                    // No dialog should offer a change in read-only mode; this guards other paths.
                    self.status = Some(Status::Error(
                        "read-only mode: nothing can be changed".into(),
                    ));
                    vec![]
                } else if key == Key::char('y') {
                    if let Effect::LaunchHost { case_id } = &confirmation.effect {
                        self.launching = Some(case_id.clone());
                    }
                    self.status = Some(Status::Info(format!("{}…", confirmation.title)));
                    vec![confirmation.effect]
                } else {
                    self.status = Some(Status::Info("cancelled: nothing was changed".into()));
                    vec![]
                }
            }
            Mode::Typed(prompt) => self.typed_key(prompt, key),
            // A view's key opens it among the related ones; any other key stays here.
            Mode::Related(targets) => {
                let chosen = self.keymap.command(&key).and_then(View::of_command);
                match targets.iter().find(|related| Some(related.view) == chosen) {
                    Some(related) => self.open_related(related),
                    None => vec![],
                }
            }
            Mode::Filter { mut input } => {
                if matches!(key.code, KeyName::Backspace | KeyName::Char(_)) {
                    self.status = None;
                }
                match key.code {
                    KeyName::Esc => {
                        self.apply_filter("");
                        return vec![];
                    }
                    KeyName::Enter => {
                        self.apply_filter(&input);
                        if matches!(self.status, Some(Status::Error(_))) {
                            // Stay in the filter line so the operator can fix the term.
                            self.mode = Mode::Filter { input };
                        }
                        return vec![];
                    }
                    KeyName::Backspace => {
                        input.pop();
                    }
                    // ctrl-u empties the line, as in a shell: a new term without backspacing.
                    KeyName::Char('u') if key.ctrl => input.clear(),
                    KeyName::Char(c) if !key.ctrl && !key.alt => input.push(c),
                    _ => {}
                }
                // Filter as the operator types; a half-typed term that does not parse yet
                // leaves the previous result on screen.
                if let Ok(filter) = Filter::parse(&input) {
                    self.set_filter(Some(filter));
                }
                self.mode = Mode::Filter { input };
                vec![]
            }
            Mode::Command { mut input } => match key.code {
                KeyName::Esc => vec![],
                KeyName::Enter => self.run_command_line(&input),
                KeyName::Tab => {
                    if let Some(completed) = complete(&input) {
                        input = completed;
                    }
                    self.mode = Mode::Command { input };
                    vec![]
                }
                KeyName::Backspace => {
                    input.pop();
                    self.mode = Mode::Command { input };
                    vec![]
                }
                KeyName::Char('u') if key.ctrl => {
                    self.mode = Mode::Command {
                        input: String::new(),
                    };
                    vec![]
                }
                KeyName::Char(c) if !key.ctrl && !key.alt => {
                    input.push(c);
                    self.mode = Mode::Command { input };
                    vec![]
                }
                _ => {
                    self.mode = Mode::Command { input };
                    vec![]
                }
            },
        }
    }

    /// A key in a typed prompt: text edits it, enter answers it, esc cancels it, the arrows
    /// scroll what it says.
    fn typed_key(&mut self, mut prompt: TypedPrompt, key: Key) -> Vec<Effect> {
        if let Some(scroll) = scrolled(prompt.scroll, &key) {
            prompt.scroll = scroll;
            self.mode = Mode::Typed(prompt);
            return vec![];
        }
        match key.code {
            KeyName::Esc => {
                self.status = Some(Status::Info("cancelled: nothing was changed".into()));
                return vec![];
            }
            KeyName::Enter => {
                let answer = prompt.input.trim();
                match &prompt.expected {
                    Some(expected) if answer != expected => {
                        self.status = Some(Status::Error(format!(
                            "'{}' is not {expected}: type the instance id exactly; nothing was changed",
                            crate::text::clip_untrusted(answer, 40)
                        )));
                    }
                    None if answer.is_empty() => {
                        self.status = Some(Status::Error(
                            "say why: the reason is recorded with the decision".into(),
                        ));
                    }
                    _ => {
                        self.status = Some(Status::Info(format!("{}…", prompt.title)));
                        return vec![Effect::Decide {
                            decision: prompt.decision,
                            answer: answer.to_owned(),
                        }];
                    }
                }
            }
            KeyName::Backspace => {
                prompt.input.pop();
                self.status = None;
            }
            KeyName::Char('u') if key.ctrl => {
                prompt.input.clear();
                self.status = None;
            }
            KeyName::Char(c) if !key.ctrl && !key.alt && !c.is_control() => {
                if prompt.input.chars().count() < TYPED_LIMIT {
                    prompt.input.push(c);
                }
                self.status = None;
            }
            _ => {}
        }
        self.mode = Mode::Typed(prompt);
        vec![]
    }
}

/// Where a dialog's scroll goes for an arrow or page key; `None` for any other key. The
/// draw stops it at the dialog's end.
fn scrolled(scroll: u16, key: &Key) -> Option<u16> {
    const PAGE: u16 = 10;
    match key.code {
        KeyName::Up => Some(scroll.saturating_sub(1)),
        KeyName::Down => Some(scroll.saturating_add(1)),
        KeyName::PageUp => Some(scroll.saturating_sub(PAGE)),
        KeyName::PageDown => Some(scroll.saturating_add(PAGE)),
        _ => None,
    }
}

/// Completes a command line: the longest common prefix of the commands that start with it.
pub fn complete(input: &str) -> Option<String> {
    if input.contains(' ') {
        let (command, partial) = input.split_once(' ')?;
        if command != "theme" {
            return None;
        }
        let names: Vec<&str> = crate::theme::SHIPPED
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| n.starts_with(partial))
            .collect();
        return common_prefix(&names).map(|p| format!("theme {p}"));
    }
    let names: Vec<&str> = View::COMMANDS
        .iter()
        .map(|(n, _)| *n)
        .chain(OTHER_COMMANDS)
        .filter(|n| n.starts_with(input))
        .collect();
    common_prefix(&names).map(str::to_owned)
}

fn common_prefix<'a>(names: &[&'a str]) -> Option<&'a str> {
    let first = *names.first()?;
    let length = names.iter().fold(first.len(), |len, name| {
        first
            .bytes()
            .zip(name.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    Some(&first[..length])
}
