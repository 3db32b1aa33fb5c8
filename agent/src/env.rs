//! The environment handed to children: the container's environment, minus the access token,
//! plus `KEY=VALUE` lines from the file named by `EXECD_ENVS` (upstream execd's contract,
//! used by the SDK's `commands.set_env`), plus per-request overrides.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::TOKEN_ENV;

/// Name of the variable pointing at the persistent env file.
pub const ENV_FILE_VAR: &str = "EXECD_ENVS";

/// Snapshot of the agent's environment taken at start, without the token.
#[derive(Debug, Clone)]
pub struct ChildEnv {
    base: Vec<(OsString, OsString)>,
}

impl ChildEnv {
    /// Snapshot `std::env::vars_os()` minus the token variable.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars_os())
    }

    /// Build from explicit pairs (tests), dropping the token variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let base = vars.into_iter().filter(|(k, _)| k != TOKEN_ENV).collect();
        Self { base }
    }

    /// Value of `key` in the snapshot.
    pub fn get(&self, key: &str) -> Option<&OsString> {
        self.base.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Apply to `cmd`: clear the inherited environment, then set snapshot, env file and
    /// `extra` (later wins).
    pub fn apply(&self, cmd: &mut Command, extra: Option<&BTreeMap<String, String>>) {
        cmd.env_clear();
        cmd.envs(self.base.iter().map(|(k, v)| (k, v)));
        if let Some(path) = self.get(ENV_FILE_VAR) {
            for (k, v) in read_env_file(Path::new(path)) {
                cmd.env(k, v);
            }
        }
        if let Some(extra) = extra {
            cmd.envs(extra);
        }
    }

    /// Find an executable on the snapshot's `PATH`.
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        let path = self
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    }

    /// The shell for commands: `preferred`, else `bash` on PATH, else `sh` (as absolute
    /// paths, so children without a `PATH` still find it).
    pub fn shell(&self, preferred: Option<&str>) -> String {
        if let Some(s) = preferred {
            return s.to_owned();
        }
        ["bash", "sh"]
            .iter()
            .find_map(|n| self.which(n))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sh".to_owned())
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Parse `KEY=VALUE` lines; `#` comments and blank lines are skipped, and one level of
/// matching single or double quotes around the value is removed.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let valid_key = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            continue;
        }
        out.push((k.to_owned(), unquote(v.trim())));
    }
    out
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && b[0] == b'\'' && b[b.len() - 1] == b'\'' {
        return v[1..v.len() - 1].to_owned();
    }
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let inner = &v[1..v.len() - 1];
        let mut s = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                s.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some(o) => s.push(o),
                None => s.push('\\'),
            }
        }
        return s;
    }
    v.to_owned()
}

fn read_env_file(path: &Path) -> Vec<(String, String)> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_env_file(&text),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn token_is_dropped_from_the_snapshot() {
        let env = ChildEnv::from_vars([
            (OsString::from("A"), OsString::from("1")),
            (OsString::from(TOKEN_ENV), OsString::from("secret")),
        ]);
        assert!(env.get(TOKEN_ENV).is_none());
        assert_eq!(env.get("A").unwrap(), "1");
    }

    #[test]
    fn env_file_lines_are_parsed() {
        let parsed =
            parse_env_file("# c\nFOO='a b'\nBAR=\"x\\ny\"\n\nexport BAZ=3\n1BAD=x\nnoeq\nQ=it's\n");
        assert_eq!(
            parsed,
            vec![
                ("FOO".into(), "a b".into()),
                ("BAR".into(), "x\ny".into()),
                ("BAZ".into(), "3".into()),
                ("Q".into(), "it's".into()),
            ]
        );
    }
}
