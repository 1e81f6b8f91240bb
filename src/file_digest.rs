//! Whether a file changed, told by its content.
//!
//! A modification time is not enough: `cp -p`, `rsync -t` and `tar` keep
//! the old one, and two writes can land within one timestamp tick, so a
//! replaced credential or certificate file would never be reloaded. The
//! files watched here are small (keys, certificates, Kafka secrets), so reading and
//! hashing them every `limits.reload_interval` costs next to nothing.

use std::path::Path;

use sha2::{Digest as _, Sha256};

/// The SHA-256 of a file's content; `None` when it cannot be read.
pub(crate) type FileDigest = Option<[u8; 32]>;

/// The digest of each file, in order.
pub(crate) fn file_digests<'p>(paths: impl IntoIterator<Item = &'p Path>) -> Vec<FileDigest> {
    paths
        .into_iter()
        .map(|p| {
            std::fs::read(p)
                .ok()
                .map(|bytes| Sha256::digest(&bytes).into())
        })
        .collect()
}

#[cfg(test)]
mod tests;
