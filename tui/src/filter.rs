//! The `/` filter language: whitespace-separated terms that must all match.
//!
//! | term | matches |
//! |---|---|
//! | `web` | rows whose text contains `web` (case-insensitive) |
//! | `/^prod-.*-0[1-3]$/` | rows whose text matches the regular expression |
//! | `tag:Owner=data-platform@example.com` | rows with that tag value (`tag:Owner` alone: the tag exists) |
//! | `account:prod-web`, `region:eu-west-1`, `state:stopped` | that field contains the value |
//! | `sev>=HIGH` (also `>`, `=`, `<=`, `<`) | rows by severity (highest open finding, for instances) |
//! | `!term` | rows the term does not match |
//!
//! Values with spaces go in double quotes: `tag:Name="prod web"`.

use irf_engine::findings::Severity;
use regex::Regex;

/// A field a term can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Account,
    Region,
    State,
}

/// How a severity term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

#[derive(Debug, Clone)]
enum Term {
    Text(String),
    Regex(Regex),
    Tag {
        key: String,
        value: Option<String>,
    },
    Field {
        field: Field,
        value: String,
    },
    Severity {
        comparison: Comparison,
        level: Severity,
    },
}

/// What a row offers to the filter.
pub trait Filterable {
    /// The row's searchable text, lower-cased.
    fn haystack(&self) -> &str;
    /// A tag's value, for rows that have tags (most have none).
    fn tag(&self, _key: &str) -> Option<&str> {
        None
    }
    /// The values of a field (an account has an id and a name), lower-cased.
    fn field(&self, field: Field) -> Vec<String>;
    /// The row's severity, for rows that have one (most have none).
    fn severity(&self) -> Option<Severity> {
        None
    }
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub struct Filter {
    terms: Vec<(bool, Term)>,
    text: String,
}

impl Filter {
    /// Parses filter text; the error names the bad term.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for token in tokens(text)? {
            let (negated, body) = match token.strip_prefix('!') {
                Some(rest) if !rest.is_empty() => (true, rest.to_owned()),
                _ => (false, token.clone()),
            };
            terms.push((negated, parse_term(&body)?));
        }
        Ok(Self {
            terms,
            text: text.to_owned(),
        })
    }

    /// The text the filter was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the filter has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `row` satisfies every term.
    pub fn matches(&self, row: &dyn Filterable) -> bool {
        self.terms
            .iter()
            .all(|(negated, term)| term_matches(term, row) != *negated)
    }
}

fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(format!("unclosed quote in '{text}'"));
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

fn parse_term(body: &str) -> Result<Term, String> {
    if body.len() >= 2 && body.starts_with('/') && body.ends_with('/') {
        let pattern = &body[1..body.len() - 1];
        return regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(Term::Regex)
            .map_err(|err| format!("'{pattern}' is not a regular expression: {err}"));
    }
    if let Some(rest) = body.strip_prefix("tag:") {
        let (key, value) = match rest.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (rest, None),
        };
        if key.is_empty() {
            return Err(format!(
                "'{body}' names no tag: write tag:Key or tag:Key=Value"
            ));
        }
        return Ok(Term::Tag {
            key: key.to_owned(),
            value,
        });
    }
    for (prefix, field) in [
        ("account:", Field::Account),
        ("region:", Field::Region),
        ("state:", Field::State),
    ] {
        if let Some(value) = body.strip_prefix(prefix) {
            return Ok(Term::Field {
                field,
                value: value.to_lowercase(),
            });
        }
    }
    if let Some(rest) = body.strip_prefix("sev") {
        let (comparison, level) = [
            (">=", Comparison::GreaterOrEqual),
            ("<=", Comparison::LessOrEqual),
            (">", Comparison::Greater),
            ("<", Comparison::Less),
            ("=", Comparison::Equal),
        ]
        .into_iter()
        .find_map(|(op, comparison)| rest.strip_prefix(op).map(|level| (comparison, level)))
        .ok_or_else(|| format!("'{body}' is not a severity term: write for example sev>=HIGH"))?;
        let level = level.parse::<Severity>()?;
        return Ok(Term::Severity { comparison, level });
    }
    Ok(Term::Text(body.to_lowercase()))
}

fn term_matches(term: &Term, row: &dyn Filterable) -> bool {
    match term {
        Term::Text(text) => row.haystack().contains(text.as_str()),
        Term::Regex(regex) => regex.is_match(row.haystack()),
        Term::Tag { key, value } => match (row.tag(key), value) {
            (Some(_), None) => true,
            (Some(actual), Some(wanted)) => actual == wanted,
            (None, _) => false,
        },
        Term::Field { field, value } => {
            row.field(*field).iter().any(|v| v.contains(value.as_str()))
        }
        Term::Severity { comparison, level } => {
            row.severity().is_some_and(|severity| match comparison {
                Comparison::Less => severity < *level,
                Comparison::LessOrEqual => severity <= *level,
                Comparison::Equal => severity == *level,
                Comparison::GreaterOrEqual => severity >= *level,
                Comparison::Greater => severity > *level,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    struct Row {
        text: String,
        tags: Vec<(&'static str, &'static str)>,
        account: Vec<String>,
        region: String,
        state: String,
        severity: Option<Severity>,
    }

    impl Filterable for Row {
        fn haystack(&self) -> &str {
            &self.text
        }
        fn tag(&self, key: &str) -> Option<&str> {
            self.tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }
        fn field(&self, field: Field) -> Vec<String> {
            match field {
                Field::Account => self.account.clone(),
                Field::Region => vec![self.region.clone()],
                Field::State => vec![self.state.clone()],
            }
        }
        fn severity(&self) -> Option<Severity> {
            self.severity
        }
    }

    fn row() -> Row {
        Row {
            text: "i-0abc prod-web-01 165667010651 prod-web us-east-1 running t3.medium".into(),
            tags: vec![
                ("Owner", "storefront-team@example.com"),
                ("Name", "prod web 01"),
            ],
            account: vec!["165667010651".into(), "prod-web".into()],
            region: "us-east-1".into(),
            state: "running".into(),
            severity: Some(Severity::High),
        }
    }

    #[rstest]
    #[case("", true)]
    #[case("web", true)]
    #[case("WEB", true)]
    #[case("database", false)]
    #[case("!database", true)]
    #[case("!web", false)]
    #[case("web running", true)]
    #[case("web stopped", false)]
    #[case("/^i-0a.*medium$/", true)]
    #[case("/^prod/", false)]
    #[case("tag:Owner", true)]
    #[case("tag:Owner=storefront-team@example.com", true)]
    #[case("tag:Owner=someone-else", false)]
    #[case("!tag:SecurityIncidentStatus", true)]
    #[case("tag:Name=\"prod web 01\"", true)]
    #[case("account:prod-web", true)]
    #[case("account:1656670", true)]
    #[case("account:prod-data", false)]
    #[case("region:eu-", false)]
    #[case("region:us-east", true)]
    #[case("state:stopped", false)]
    #[case("sev>=HIGH", true)]
    #[case("sev>HIGH", false)]
    #[case("sev=high", true)]
    #[case("sev<critical", true)]
    #[case("sev<=medium", false)]
    fn terms(#[case] text: &str, #[case] expected: bool) {
        let filter = Filter::parse(text).expect("parses");
        assert_eq!(filter.matches(&row()), expected, "'{text}'");
    }

    #[test]
    fn rows_without_severity_never_match_a_severity_term() {
        let mut plain = row();
        plain.severity = None;
        assert!(!Filter::parse("sev>=LOW").expect("parses").matches(&plain));
    }

    #[rstest]
    #[case("/[unclosed/", "'[unclosed'")]
    #[case("sev>=URGENT", "'URGENT'")]
    #[case("sev~HIGH", "'sev~HIGH'")]
    #[case("tag:", "'tag:'")]
    #[case("\"open", "unclosed quote")]
    fn bad_terms_are_named(#[case] text: &str, #[case] expected: &str) {
        let err = Filter::parse(text).expect_err("rejected");
        assert!(err.contains(expected), "{err}");
    }
}
