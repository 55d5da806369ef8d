//! What an image's own configuration may ask of the containers made from it.
//!
//! A tool image is built by whoever published the spec; its config can ask the engine for
//! things the sandbox profile does not cover. [`check`] decides, per field, and is applied at
//! publish, at provide and (defensively, cached by image id) before every run:
//!
//! | field | outcome |
//! |---|---|
//! | `Volumes` | neutralised: each path gets a `noexec,nosuid,nodev` tmpfs sharing the `/tmp` scratch budget ([`crate::profile::scratch_mounts`]), so no disk-backed anonymous volume is created; refused past [`MAX_IMAGE_VOLUMES`], or for `/`, a relative path, or a path under `/proc`, `/sys` or `/dev` |
//! | `Healthcheck` | neutralised: every container is created with `Healthcheck: ["NONE"]` |
//!
//! Everything else the sandbox overrides anyway (user, network, environment, entrypoint when
//! the spec names a command, capabilities, root filesystem).

use bollard::models::ImageConfig;

/// Most `VOLUME`s an image may declare (each splits the scratch budget further).
pub const MAX_IMAGE_VOLUMES: usize = 4;
/// Longest `VOLUME` path accepted.
pub const MAX_VOLUME_PATH: usize = 256;
/// Where no volume may go: the kernel's and the engine's own mounts.
const RESERVED: &[&str] = &["/proc", "/sys", "/dev"];

/// What an accepted image needs from the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePolicy {
    /// `VOLUME` paths, sorted, each to be covered by a tmpfs.
    pub volumes: Vec<String>,
    /// Whether the image declares a `HEALTHCHECK` (switched off on every container).
    pub healthcheck: bool,
}

/// Why an image is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefusal {
    /// More volumes than [`MAX_IMAGE_VOLUMES`].
    #[error("the image declares {count} VOLUMEs; at most {max} are accepted")]
    TooManyVolumes {
        /// Declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A volume path that cannot be covered by a tmpfs.
    #[error("the image's VOLUME `{path}` is refused: {reason}")]
    BadVolume {
        /// The path, truncated.
        path: String,
        /// Why.
        reason: &'static str,
    },
}

/// Checks an image's config (`None`: an image without one, which asks for nothing).
pub fn check(config: Option<&ImageConfig>) -> Result<ImagePolicy, ImageRefusal> {
    let Some(config) = config else {
        return Ok(ImagePolicy::default());
    };
    let declared = config.volumes.as_deref().unwrap_or_default();
    if declared.len() > MAX_IMAGE_VOLUMES {
        return Err(ImageRefusal::TooManyVolumes {
            count: declared.len(),
            max: MAX_IMAGE_VOLUMES,
        });
    }
    let mut volumes = Vec::with_capacity(declared.len());
    for v in declared {
        let path = check_volume(v)?;
        if !volumes.contains(&path) {
            volumes.push(path);
        }
    }
    volumes.sort();
    let healthcheck = config
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| !t.is_empty() && t.first().map(String::as_str) != Some("NONE"));
    Ok(ImagePolicy { volumes, healthcheck })
}

/// The volume path, cleaned of a trailing `/`, or why it is refused.
fn check_volume(raw: &str) -> Result<String, ImageRefusal> {
    let err = |reason| ImageRefusal::BadVolume {
        path: raw.chars().take(80).collect(),
        reason,
    };
    if raw.len() > MAX_VOLUME_PATH {
        return Err(err("the path is too long"));
    }
    let path = raw.trim_end_matches('/');
    if !raw.starts_with('/') {
        return Err(err("the path must be absolute"));
    }
    if path.is_empty() {
        return Err(err("a volume over the whole root filesystem"));
    }
    if path[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(err("the path must not have empty, `.` or `..` components"));
    }
    // The engine's tmpfs option syntax is `path:options`; keep paths plain.
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+' | b'@'))
    {
        return Err(err("the path may only hold a-z, A-Z, 0-9 and `/._-+@`"));
    }
    if RESERVED
        .iter()
        .any(|r| path == *r || path.strip_prefix(r).is_some_and(|rest| rest.starts_with('/')))
    {
        return Err(err("the path is under /proc, /sys or /dev"));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use bollard::models::HealthConfig;

    use super::*;

    fn config(volumes: &[&str], health: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            volumes: Some(volumes.iter().map(|s| (*s).to_owned()).collect()),
            healthcheck: health.map(|t| HealthConfig {
                test: Some(t.iter().map(|s| (*s).to_owned()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn volumes_are_kept_for_tmpfs_and_healthchecks_noted() {
        let p = check(Some(&config(
            &["/data/", "/cache", "/data"],
            Some(&["CMD", "/probe"]),
        )))
        .unwrap();
        assert_eq!(p.volumes, vec!["/cache".to_owned(), "/data".to_owned()]);
        assert!(p.healthcheck);
        let p = check(Some(&config(&[], Some(&["NONE"])))).unwrap();
        assert_eq!(p, ImagePolicy::default());
        assert_eq!(check(None).unwrap(), ImagePolicy::default());
    }

    #[test]
    fn too_many_or_dangerous_volumes_are_refused() {
        let five = ["/a", "/b", "/c", "/d", "/e"];
        assert_eq!(
            check(Some(&config(&five, None))),
            Err(ImageRefusal::TooManyVolumes { count: 5, max: 4 })
        );
        for bad in [
            "/", "data", "/proc", "/sys/fs", "/dev/shm", "/a/../b", "/a b", "/x:ro", "//x",
        ] {
            assert!(
                matches!(
                    check(Some(&config(&[bad], None))),
                    Err(ImageRefusal::BadVolume { .. })
                ),
                "{bad}"
            );
        }
        assert!(check(Some(&config(&["/devices", "/process"], None))).is_ok());
    }
}
