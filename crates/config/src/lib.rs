//! Loading TOML configuration files.
//!
//! Each binary defines its own `serde(deny_unknown_fields)` structs, defaults and
//! `validate()`; this crate reads and parses the file and gives both binaries one error
//! type, [`ConfigError`], that names the file and the dotted key at fault.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid config value `{key}`: {message}")]
    Invalid {
        /// The dotted key, e.g. `server.listen`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ConfigError {
    /// An invalid value at the dotted `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Serde's names for Rust types, and what an operator should read instead. Longer names
/// first, so a prefix never shadows them.
const PLAIN_WORDS: &[(&str, &str)] = &[
    ("expected usize", "expected a whole number (0 or more)"),
    ("expected u8", "expected a whole number from 0 to 255"),
    ("expected u16", "expected a whole number from 0 to 65535"),
    ("expected u32", "expected a whole number (0 or more)"),
    ("expected u64", "expected a whole number (0 or more)"),
    ("expected i32", "expected a whole number"),
    ("expected i64", "expected a whole number"),
    ("expected f32", "expected a number"),
    ("expected f64", "expected a number"),
    ("expected a sequence", "expected a list like [\"a\", \"b\"]"),
    ("expected a map", "expected a table"),
    ("invalid type: ", ""),
];

/// Rewrites serde's wording in plain words (no Rust type names).
fn plain(message: &str) -> String {
    let mut m = message.trim().to_owned();
    for (from, to) in PLAIN_WORDS {
        m = m.replace(from, to);
    }
    if let Some(i) = m.find("expected struct ") {
        let end = m[i..].find([',', '\n']).map_or(m.len(), |e| i + e);
        m.replace_range(i..end, "expected a table");
    }
    m
}

/// `key: message (line N)`, from a serde error with its path.
fn describe(path: &serde_path_to_error::Path, message: &str, line: Option<usize>) -> String {
    let key = path.to_string();
    let mut out = String::new();
    if key != "." && !key.is_empty() {
        out.push('`');
        out.push_str(&key);
        out.push_str("`: ");
    }
    out.push_str(&plain(message));
    if let Some(l) = line {
        out.push_str(&format!(" (line {l})"));
    }
    out
}

/// Parses TOML text into `T`; the error message names the dotted key, the expected form
/// and the line, once and in plain words.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let line = inner
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        describe(e.path(), inner.message(), line)
    })
}

/// Environment variables that override single keys: `{prefix}SECTION__KEY=value` sets
/// `section.key` (`__` separates levels; names are lower-cased). A value that reads as
/// a TOML literal (`8080`, `true`, `["a"]`, `"quoted"`) is taken as that, anything else
/// as a string.
pub fn env_overrides<I>(prefix: &str, vars: I) -> Vec<(String, Vec<String>, String)>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut out: Vec<_> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(prefix)?;
            if !rest.contains("__") {
                return None;
            }
            let path = rest.split("__").map(str::to_ascii_lowercase).collect();
            Some((name, path, value))
        })
        .collect();
    out.sort();
    out
}

fn literal(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

/// Reads the TOML file at `path`, applies the environment overrides for `prefix` (see
/// [`env_overrides`]; the file's values lose), and deserializes. Errors name the file
/// and the dotted key, and an error in an overridden key names its variable.
pub fn load_layered<T: DeserializeOwned>(path: &Path, prefix: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    let overrides = env_overrides(prefix, std::env::vars());
    if overrides.is_empty() {
        return parse(&text).map_err(|message| ConfigError::Parse {
            path: path.into(),
            message,
        });
    }
    let parse_err = |message| ConfigError::Parse {
        path: path.into(),
        message,
    };
    let mut root: toml::Table = parse(&text).map_err(parse_err)?;
    for (name, keys, value) in &overrides {
        let Some((last, parents)) = keys.split_last() else {
            continue;
        };
        let mut table = &mut root;
        for k in parents {
            let entry = table
                .entry(k.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError::Parse {
                        path: path.into(),
                        message: format!("{name}: `{k}` is not a table"),
                    })
                }
            };
        }
        table.insert(last.clone(), literal(value));
    }
    serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|e| {
        let key = e.path().to_string();
        let var = overrides
            .iter()
            .find(|(_, keys, _)| keys.join(".") == key)
            .map(|(n, _, _)| format!(" (set by {n})"))
            .unwrap_or_default();
        ConfigError::Parse {
            path: path.into(),
            message: format!("{}{var}", describe(e.path(), e.inner().message(), None)),
        }
    })
}

/// Reads and parses the TOML file at `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigError::Parse {
        path: path.into(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        port: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        #[allow(dead_code)]
        server: Sample,
    }

    #[test]
    fn errors_name_the_dotted_key_in_plain_words_once() {
        let err = parse::<Nested>("[server]\nport = \"x\"\n").unwrap_err();
        assert_eq!(
            err,
            "`server.port`: string \"x\", expected a whole number from 0 to 65535 (line 2)"
        );
        let err = parse::<Nested>("[server]\nport = 70000\n").unwrap_err();
        assert!(
            err.starts_with("`server.port`:") && !err.contains("u16"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_beat_the_file_and_name_their_variable() {
        let vars = vec![
            ("APP_SERVER__PORT".to_owned(), "81".to_owned()),
            ("APP_LISTEN".to_owned(), "ignored".to_owned()),
            ("OTHER_SERVER__PORT".to_owned(), "1".to_owned()),
        ];
        let o = env_overrides("APP_", vars);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].1, vec!["server".to_owned(), "port".to_owned()]);
        assert_eq!(literal("81"), toml::Value::Integer(81));
        assert_eq!(
            literal("127.0.0.1:80"),
            toml::Value::String("127.0.0.1:80".into())
        );
    }

    #[test]
    fn unknown_keys_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "port = 1\nprot = 2\n").unwrap();
        let err = load::<Sample>(&file).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("prot"), "{err}");
        let missing = load::<Sample>(&dir.path().join("nope.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
        assert_eq!(
            ConfigError::invalid("server.port", "must be > 0").to_string(),
            "invalid config value `server.port`: must be > 0"
        );
    }
}
