//! User and group names from `/etc/passwd` and `/etc/group`.
//!
//! The binary is static, so there is no NSS: the sandbox image's files are the source.

use std::collections::HashMap;
use std::path::Path;

/// Parsed account databases.
#[derive(Debug, Default, Clone)]
pub struct Accounts {
    users: HashMap<u32, (String, u32)>,
    groups: HashMap<u32, String>,
}

impl Accounts {
    /// Load the system files (missing files give an empty table).
    pub fn load() -> Self {
        Self::load_from(Path::new("/etc/passwd"), Path::new("/etc/group"))
    }

    /// Load from explicit paths.
    pub fn load_from(passwd: &Path, group: &Path) -> Self {
        let passwd = std::fs::read_to_string(passwd).unwrap_or_default();
        let group = std::fs::read_to_string(group).unwrap_or_default();
        Self::parse(&passwd, &group)
    }

    /// Parse file contents.
    pub fn parse(passwd: &str, group: &str) -> Self {
        let mut users = HashMap::new();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 {
                if let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) {
                    users.entry(uid).or_insert((f[0].to_owned(), gid));
                }
            }
        }
        let mut groups = HashMap::new();
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3 {
                if let Ok(gid) = f[2].parse::<u32>() {
                    groups.entry(gid).or_insert_with(|| f[0].to_owned());
                }
            }
        }
        Self { users, groups }
    }

    /// User name for `uid`, or the number as text.
    pub fn user_name(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| uid.to_string())
    }

    /// Group name for `gid`, or the number as text.
    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }

    /// Primary group of `uid`, if the user is known.
    pub fn primary_gid(&self, uid: u32) -> Option<u32> {
        self.users.get(&uid).map(|(_, g)| *g)
    }

    /// Resolve a user name (or a decimal uid) to a uid.
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        self.users
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(uid, _)| *uid)
    }

    /// Resolve a group name (or a decimal gid) to a gid.
    pub fn gid_of(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        self.groups
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(gid, _)| *gid)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_both_ways() {
        let a = Accounts::parse(
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\nbroken\n",
            "root:x:0:\nusers:x:100:alice\n",
        );
        assert_eq!(a.user_name(1000), "alice");
        assert_eq!(a.user_name(4242), "4242");
        assert_eq!(a.group_name(100), "users");
        assert_eq!(a.primary_gid(1000), Some(100));
        assert_eq!(a.uid_of("alice"), Some(1000));
        assert_eq!(a.uid_of("17"), Some(17));
        assert_eq!(a.gid_of("users"), Some(100));
        assert_eq!(a.gid_of("nobody-here"), None);
    }
}
