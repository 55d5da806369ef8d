//! `atr.lock`: the tool definitions an agent project pinned, name → spec id, in TOML.
//!
//! ```toml
//! # atr.lock: each tool name an agent sees → the exact spec (id) it must be.
//! [tools]
//! calculator = "atr_…"
//! ```
//!
//! With `--lock`, `atr mcp` and `atr export` look up every locked tool's name as well as
//! their own selection, and refuse ([`LockError::Changed`], naming both ids) when a locked
//! name now resolves to another spec: a new version, another publisher's tool, a revoked
//! one. `atr lock update` shows what changed and rewrites the file ([`Lock::write`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atr_protocol::ToolId;
use atr_protocol::limits::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};

use super::select::Picked;

/// Largest lock file read (1 MiB: about 10 000 entries).
pub const MAX_LOCK_BYTES: u64 = 1024 * 1024;
/// Most tools in one lock file.
pub const MAX_LOCKED: usize = 4096;

/// The first lines of a lock file this tool writes.
const HEADER: &str = "# atr.lock: each tool name an agent sees -> the exact spec (id) it must be.\n\
# Written by `atr lock update`, which shows what changed first; commit it with the project.\n";

/// Why a lock file cannot be used, or a selection breaks it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is over [`MAX_LOCK_BYTES`].
    #[error("{}: {len} bytes, over the {max}-byte limit of a lock file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// [`MAX_LOCK_BYTES`].
        max: u64,
    },
    /// The file is not a lock file.
    #[error("{}: not an atr lock file ([tools] name = \"atr_…\"): {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A locked name now resolves to another spec.
    #[error(
        "`{name}` is locked to {locked} but now resolves to {now}: its definition changed. \
         Review and accept it with `atr lock update --lock {}`", path.display()
    )]
    Changed {
        /// The lock file.
        path: PathBuf,
        /// The tool name.
        name: String,
        /// The id in the lock file.
        locked: ToolId,
        /// The id the selection serves under that name now.
        now: ToolId,
    },
    /// A locked tool is not served any more (revoked, gone, its publisher no longer trusted).
    #[error(
        "`{name}` is locked to {locked}, which this selection no longer serves (revoked, not on this \
         node, or its publisher not trusted); see `atr lock update --lock {}`", path.display()
    )]
    Missing {
        /// The lock file.
        path: PathBuf,
        /// The tool name.
        name: String,
        /// The id in the lock file.
        locked: ToolId,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    #[serde(default)]
    tools: BTreeMap<String, String>,
}

/// A parsed lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// Where it was read from (and is written to).
    pub path: PathBuf,
    /// Tool name → pinned spec id.
    pub tools: BTreeMap<String, ToolId>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Lock {
    /// Reads `path`; a missing file is an empty lock (when `missing_ok`).
    pub fn read(path: &Path, missing_ok: bool) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_owned(),
                    tools: BTreeMap::new(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        if len > MAX_LOCK_BYTES {
            return Err(LockError::TooLarge {
                path: path.to_owned(),
                len,
                max: MAX_LOCK_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::parse(path, &text)
    }

    /// Parses a lock file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, LockError> {
        let malformed = |message: String| LockError::Malformed {
            path: path.to_owned(),
            message,
        };
        if text.len() as u64 > MAX_LOCK_BYTES {
            return Err(malformed(format!("over {MAX_LOCK_BYTES} bytes")));
        }
        let file: LockFile = toml::from_str(text).map_err(|e| malformed(e.message().to_owned()))?;
        if file.tools.len() > MAX_LOCKED {
            return Err(malformed(format!(
                "{} tools, over the limit of {MAX_LOCKED}",
                file.tools.len()
            )));
        }
        let mut tools = BTreeMap::new();
        for (name, id) in file.tools {
            if !valid_name(&name) {
                let shown: String = name.chars().take(80).flat_map(char::escape_default).collect();
                return Err(malformed(format!("`{shown}` is not a tool name")));
            }
            let id: ToolId = id.parse().map_err(|e| malformed(format!("`{name}`: {e}")))?;
            tools.insert(name, id);
        }
        Ok(Self {
            path: path.to_owned(),
            tools,
        })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        out.push_str("[tools]\n");
        for (name, id) in &self.tools {
            // Names are `[A-Za-z0-9_.-]`: quoted, they are always valid TOML keys.
            out.push_str(&format!("\"{name}\" = \"{id}\"\n"));
        }
        out
    }

    /// Writes the file (through a temporary file and a rename, so a reader never sees half).
    pub fn write(&self) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: self.path.clone(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.render()).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Checks what a selection serves against the lock: every locked name must be served and
    /// be the locked spec. Names the lock does not list are not checked.
    pub fn check(&self, picked: &Picked) -> Result<(), LockError> {
        for (name, locked) in &self.tools {
            match picked.named(name) {
                Some(c) if c.view.id == *locked => {}
                Some(c) => {
                    return Err(LockError::Changed {
                        path: self.path.clone(),
                        name: name.clone(),
                        locked: *locked,
                        now: c.view.id,
                    });
                }
                None => {
                    return Err(LockError::Missing {
                        path: self.path.clone(),
                        name: name.clone(),
                        locked: *locked,
                    });
                }
            }
        }
        Ok(())
    }

    /// What a selection would make of the lock: the names it serves → their ids.
    pub fn of(path: &Path, picked: &Picked) -> Self {
        Self {
            path: path.to_owned(),
            tools: picked.tools.iter().map(|c| (c.name.clone(), c.view.id)).collect(),
        }
    }
}

/// One line of a [`line_diff`]: `' '` context, `'-'` only in the old text, `'+'` only in the new.
pub type DiffLine = (char, String);

/// Most lines of the differing middle compared line by line; past it, the middle is shown as
/// removed then added (quadratic work stays bounded: 2 000 × 2 000 cells).
pub const MAX_DIFF_LINES: usize = 2_000;
/// Unchanged lines shown around each change.
pub const DIFF_CONTEXT: usize = 3;

/// A readable line diff of `old` and `new` (longest common subsequence, with
/// [`DIFF_CONTEXT`] lines of context; `…` stands for skipped lines).
pub fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut all: Vec<(char, &str)> = a[..prefix].iter().map(|l| (' ', *l)).collect();
    if am.len() <= MAX_DIFF_LINES && bm.len() <= MAX_DIFF_LINES {
        // lcs[i][j]: length of the LCS of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![0u16; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                all.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                all.push(('-', am[i]));
                i += 1;
            } else {
                all.push(('+', bm[j]));
                j += 1;
            }
        }
    } else {
        all.extend(am.iter().map(|l| ('-', *l)));
        all.extend(bm.iter().map(|l| ('+', *l)));
    }
    all.extend(a[a.len() - suffix..].iter().map(|l| (' ', *l)));
    // Keep changes and the context around them.
    let changed: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k != ' ')
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| {
        changed
            .iter()
            .any(|&c| i + DIFF_CONTEXT >= c && i <= c + DIFF_CONTEXT)
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (i, (k, l)) in all.iter().enumerate() {
        if near(i) {
            out.push((*k, (*l).to_owned()));
            skipped = false;
        } else if !skipped {
            out.push((' ', "…".to_owned()));
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_round_trip_and_bad_ones_are_refused() {
        let id: ToolId = format!("atr_{}", "a".repeat(52)).parse().unwrap();
        let path = Path::new("atr.lock");
        let lock = Lock {
            path: path.to_owned(),
            tools: [("calculator".to_owned(), id)].into(),
        };
        assert_eq!(Lock::parse(path, &lock.render()).unwrap(), lock);
        for bad in [
            "[tools]\ncalculator = \"atr_nope\"\n",
            "[tools]\n\"bad name\" = \"atr_aaaa\"\n",
            "tools = 3\n",
            "[other]\n",
        ] {
            assert!(
                matches!(Lock::parse(path, bad), Err(LockError::Malformed { .. })),
                "{bad}"
            );
        }
        assert_eq!(Lock::parse(path, "").unwrap().tools.len(), 0);
    }

    #[test]
    fn line_diff_shows_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n";
        let d = line_diff(old, new);
        let text: Vec<String> = d.iter().map(|(k, l)| format!("{k}{l}")).collect();
        assert_eq!(
            text,
            [" …", " b", " c", " d", "-e", "+E", " f", " g", " h", " i", "+j"]
        );
        assert!(line_diff("x\n", "x\n").iter().all(|(k, _)| *k == ' '));
    }
}
