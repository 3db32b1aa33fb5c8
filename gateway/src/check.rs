//! Cross-checks between the configuration and the files it names, run at start-up, on
//! reload and by `gatehouse config check`: every API key's role exists in the role table,
//! and a console directory the file names exists.

use crate::config::{ConfigError, GatewayConfig};
use gatehouse_authz::RoleTable;

/// The first inconsistency between `cfg` and `table`, naming the dotted key.
pub fn cross_check(cfg: &GatewayConfig, table: &RoleTable) -> Result<(), ConfigError> {
    for (i, key) in cfg.auth.api_keys.iter().enumerate() {
        if !table.has_role(&key.role) {
            return Err(ConfigError::invalid(
                format!("auth.api_keys[{i}].role"),
                format!(
                    "key '{}' has role '{}', which the role table {} does not define; \
                     expected one of: {}",
                    key.name,
                    key.role,
                    cfg.policy.path.display(),
                    table.role_names().join(", ")
                ),
            ));
        }
    }
    if let Some(k) = &cfg.platform.kubernetes {
        if !table.has_role(&k.role) {
            return Err(ConfigError::invalid(
                "platform.kubernetes.role",
                format!(
                    "the role table {} has no role '{}'; expected one of: {}",
                    cfg.policy.path.display(),
                    k.role,
                    table.role_names().join(", ")
                ),
            ));
        }
    }
    // The default location may be missing on an API-only gateway (the console then
    // answers 404); a directory the operator named must exist.
    let default = crate::config::ConsoleSection::default().dir;
    if !cfg.console.dir.is_dir() && cfg.console.dir != default {
        return Err(ConfigError::invalid(
            "console.dir",
            format!(
                "'{}' is not a directory; expected the built console (run `npm run build` in console/)",
                cfg.console.dir.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_role_missing_from_the_table_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg: GatewayConfig = gatehouse_config::parse(
            r#"
            [[auth.api_keys]]
            name = "ci"
            sha256 = "00"
            role = "operatr"
            "#,
        )
        .unwrap();
        cfg.console.dir = dir.path().to_owned();
        let table = RoleTable::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/roles.toml"),
        )
        .unwrap();
        let err = cross_check(&cfg, &table).unwrap_err().to_string();
        assert!(err.contains("auth.api_keys[0].role"), "{err}");
        assert!(
            err.contains("'operatr'") && err.contains("operator"),
            "{err}"
        );
        cfg.auth.api_keys[0].role = "operator".into();
        assert!(cross_check(&cfg, &table).is_ok());
        cfg.console.dir = dir.path().join("missing");
        let err = cross_check(&cfg, &table).unwrap_err().to_string();
        assert!(err.contains("console.dir"), "{err}");
    }
}
