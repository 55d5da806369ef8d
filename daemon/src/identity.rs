//! The node's identity: one ed25519 key, created on first start in the data
//! dir (`identity.key`, 32-byte seed, mode 0600) and reused after. Its public
//! key is both the libp2p peer id and the publisher key of every spec,
//! revocation and receipt the node signs.

use std::io::Write;
use std::path::Path;

use atr_protocol::SecretKey;

/// File name of the key inside the data dir.
pub const KEY_FILE: &str = "identity.key";

/// Why the identity could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a 32-byte seed.
    #[error(
        "key file {path} is {len} bytes; expected a 32-byte ed25519 seed (move it away to create a new identity)"
    )]
    Malformed {
        /// File.
        path: String,
        /// Its length.
        len: usize,
    },
    /// The file is readable by others.
    #[error("key file {path} has mode {mode:o}; run `chmod 600 {path}`")]
    Permissions {
        /// File.
        path: String,
        /// Mode.
        mode: u32,
    },
}

/// The node's keys, in atr's and libp2p's types.
#[derive(Clone)]
pub struct Identity {
    /// atr signing key.
    pub secret: SecretKey,
    /// The same key for libp2p.
    pub keypair: libp2p::identity::Keypair,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.secret.public())
    }
}

impl Identity {
    /// An identity from a seed (tests, testnets).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let secret = SecretKey::from_seed(&seed);
        let mut bytes = seed;
        // ed25519_from_bytes zeroizes its input; it cannot fail for 32 bytes.
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(&mut bytes)
            .unwrap_or_else(|_| libp2p::identity::Keypair::generate_ed25519());
        Self { secret, keypair }
    }

    /// A fresh random identity.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self::from_seed(seed)
    }

    /// Loads `data_dir/identity.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, IdentityError> {
        let path = data_dir.join(KEY_FILE);
        let p = path.display().to_string();
        let io = |source| IdentityError::Io {
            path: p.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(IdentityError::Permissions { path: p, mode });
                    }
                }
                let seed: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| IdentityError::Malformed {
                        path: p.clone(),
                        len: bytes.len(),
                    })?;
                Ok(Self::from_seed(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let id = Self::generate();
                write_private(&path, id.secret.seed().as_slice()).map_err(io)?;
                Ok(id)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The peer id.
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.keypair.public().to_peer_id()
    }
}

/// Writes `bytes` to a new file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_reused_after_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.secret.public(), b.secret.public());
        assert_eq!(
            a.peer_id().to_string(),
            a.secret.public().to_string(),
            "peer id = publisher key text"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join(KEY_FILE), b"short").unwrap();
        let e = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, IdentityError::Malformed { len: 5, .. }), "{e}");
    }

    /// The contract with `atr-client` about local runs: the `provider` of an answer this node
    /// ran itself is its peer id text (no `local` placeholder), and it parses to the key that
    /// signs the receipt (`InvokeResponse::provider_key`).
    #[test]
    fn a_local_runs_provider_is_this_nodes_key() {
        let id = Identity::from_seed([7; 32]);
        let provider = id.peer_id().to_string();
        assert_eq!(
            provider.parse::<atr_protocol::PublicKey>().unwrap(),
            id.secret.public()
        );
    }
}
