//! Authenticated records that a file, as `fstat` identifies it, had a given
//! content: what lets a warm start trust a file without reading it.
//!
//! A [`Stamp`] is device, inode, size, mtime and ctime. Every write to a file
//! moves its ctime to the current time; a rename or copy over it changes the
//! inode; `touch -r` restores an mtime but never a ctime, which only the
//! kernel sets. So while the stamp is unchanged the bytes are too, with one
//! exception [`Record::vouches_for`] handles: timestamps have a granularity
//! (the kernel's coarse clock; a whole second or two on some filesystems), so
//! a file written twice within one tick keeps its stamp. As git does with
//! "racily clean" index entries, a record taken less than [`RACY`] after the
//! file's last change vouches for nothing: the file is read and hashed once
//! more, and the new record, taken later, does. A record older than
//! [`MAX_AGE`] is re-checked too, so silent media corruption (which changes
//! bytes but no timestamp) is caught within a day.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long after a file's last change a record of it must have been taken
/// to be trusted.
pub(super) const RACY: Duration = Duration::from_secs(2);
/// How long a record is trusted before the file is read and checked again.
pub(super) const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Version 1 of the record format.
const MAGIC: &[u8; 8] = b"TOKAR\x00\x01\n";
/// Hex of a 32-byte digest.
pub(super) const CONTENT_LEN: usize = 64;
const TAG_LEN: usize = 32;
const BODY_LEN: usize = MAGIC.len() + 3 * 8 + 3 * 16 + CONTENT_LEN;
/// Bytes of an encoded record.
pub(super) const RECORD_LEN: usize = BODY_LEN + TAG_LEN;

/// What `fstat` says about a file's identity and last change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    /// Nanoseconds since the epoch.
    mtime: i128,
    /// Nanoseconds since the epoch.
    ctime: i128,
}

impl Stamp {
    /// The stamp of the file `meta` describes.
    pub(super) fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }

    /// The file's size.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// A name for the file's inode, unique on this machine.
    pub(super) fn inode_name(&self) -> String {
        format!("{:x}-{:x}", self.dev, self.ino)
    }
}

/// "A file with this stamp had this content", as of `taken`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) stamp: Stamp,
    /// When the content was read (before it was read), ns since the epoch.
    taken: i128,
    /// The content's digest, as hex.
    pub(super) content: [u8; CONTENT_LEN],
}

/// Why a record file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unusable {
    /// Not a record of this format version.
    Format,
    /// The tag does not match: not written by this cache, or changed since.
    Tag,
}

fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().try_into().unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

impl Record {
    /// A record that the file stamped `stamp` hashed to `content` when it
    /// was read starting at `taken`.
    pub(super) fn new(stamp: Stamp, taken: SystemTime, content: &str) -> Option<Record> {
        Some(Record {
            stamp,
            taken: nanos(taken),
            content: content.as_bytes().try_into().ok()?,
        })
    }

    /// The content digest as text.
    pub(super) fn content(&self) -> &str {
        std::str::from_utf8(&self.content).unwrap_or("")
    }

    /// Whether a file now stamped `now_stamp` still has the recorded content
    /// without reading it: same stamp, recorded well after its last change,
    /// and not too long ago.
    pub(super) fn vouches_for(&self, now_stamp: &Stamp, now: SystemTime) -> bool {
        self.stamp == *now_stamp
            && self.taken - self.stamp.ctime >= RACY.as_nanos() as i128
            && nanos(now) - self.taken < MAX_AGE.as_nanos() as i128
    }

    /// The record, tagged under `key` for `subject` (what it is about, so a
    /// record cannot be moved to another entry).
    pub(super) fn encode(&self, key: &[u8; 32], subject: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.stamp.dev.to_le_bytes());
        out.extend_from_slice(&self.stamp.ino.to_le_bytes());
        out.extend_from_slice(&self.stamp.size.to_le_bytes());
        out.extend_from_slice(&self.stamp.mtime.to_le_bytes());
        out.extend_from_slice(&self.stamp.ctime.to_le_bytes());
        out.extend_from_slice(&self.taken.to_le_bytes());
        out.extend_from_slice(&self.content);
        let tag = tag(key, subject, &out);
        out.extend_from_slice(tag.as_bytes());
        out
    }

    /// The record in `bytes` if `key` tagged it for `subject`.
    pub(super) fn decode(bytes: &[u8], key: &[u8; 32], subject: &str) -> Result<Record, Unusable> {
        if bytes.len() != RECORD_LEN || bytes[..MAGIC.len()] != MAGIC[..] {
            return Err(Unusable::Format);
        }
        let (body, mac) = bytes.split_at(BODY_LEN);
        let mac: [u8; TAG_LEN] = mac.try_into().map_err(|_| Unusable::Format)?;
        // `Hash` compares in constant time.
        if tag(key, subject, body) != blake3::Hash::from_bytes(mac) {
            return Err(Unusable::Tag);
        }
        let mut at = MAGIC.len();
        let mut take = |n: usize| {
            let s = &body[at..at + n];
            at += n;
            s
        };
        let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        let i128_ = |s: &[u8]| i128::from_le_bytes(s.try_into().unwrap_or_default());
        let dev = u64_(take(8));
        let ino = u64_(take(8));
        let size = u64_(take(8));
        let mtime = i128_(take(16));
        let ctime = i128_(take(16));
        let taken = i128_(take(16));
        let content = take(CONTENT_LEN).try_into().map_err(|_| Unusable::Format)?;
        Ok(Record {
            stamp: Stamp {
                dev,
                ino,
                size,
                mtime,
                ctime,
            },
            taken,
            content,
        })
    }
}

fn tag(key: &[u8; 32], subject: &str, body: &[u8]) -> blake3::Hash {
    let mut mac = blake3::Hasher::new_keyed(key);
    mac.update(&(subject.len() as u64).to_le_bytes());
    mac.update(subject.as_bytes());
    mac.update(body);
    mac.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn stamp(ctime_s: i128) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: 0,
            ctime: ctime_s * 1_000_000_000,
        }
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn round_trip_under_the_same_key_and_subject_only() {
        let r = Record::new(stamp(100), at(200), HEX).expect("record");
        let bytes = r.encode(&KEY, "a");
        assert_eq!(bytes.len(), RECORD_LEN);
        assert_eq!(Record::decode(&bytes, &KEY, "a"), Ok(r));
        assert_eq!(Record::decode(&bytes, &KEY, "b"), Err(Unusable::Tag));
        assert_eq!(Record::decode(&bytes, &[8; 32], "a"), Err(Unusable::Tag));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(Record::decode(&flipped, &KEY, "a"), Err(Unusable::Tag));
        assert_eq!(
            Record::decode(&bytes[1..], &KEY, "a"),
            Err(Unusable::Format)
        );
    }

    /// A tampered record is never read as another valid one: every single
    /// bit flipped, every truncation and every extension is refused.
    #[test]
    fn every_flipped_bit_cut_or_extension_is_refused() {
        let bytes = Record::new(stamp(100), at(200), HEX)
            .expect("record")
            .encode(&KEY, "a");
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Record::decode(&b, &KEY, "a").is_err(),
                    "byte {i} bit {bit} flipped"
                );
            }
        }
        for n in 0..bytes.len() {
            assert!(
                Record::decode(&bytes[..n], &KEY, "a").is_err(),
                "cut to {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Record::decode(&longer, &KEY, "a").is_err(), "one byte more");
    }

    #[test]
    fn vouches_only_for_the_same_stamp() {
        let r = Record::new(stamp(100), at(200), HEX).expect("record");
        assert!(r.vouches_for(&stamp(100), at(300)));
        assert!(!r.vouches_for(&stamp(101), at(300)), "changed ctime");
        let mut other = stamp(100);
        other.ino = 9;
        assert!(!r.vouches_for(&other, at(300)), "another inode");
    }

    #[test]
    fn a_record_taken_right_after_a_change_is_racy() {
        let r = Record::new(stamp(100), at(101), HEX).expect("record");
        assert!(!r.vouches_for(&stamp(100), at(300)));
    }

    #[test]
    fn an_old_record_is_checked_again() {
        let r = Record::new(stamp(100), at(200), HEX).expect("record");
        assert!(!r.vouches_for(&stamp(100), at(200) + MAX_AGE));
    }
}
