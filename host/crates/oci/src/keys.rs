//! Signing keys in cosign's file formats, so a key made by `cosign
//! generate-key-pair` signs Toka pushes and a key made here verifies with
//! `cosign verify --key`.
//!
//! * `cosign.pub`: a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of an ECDSA P-256
//!   key.
//! * `cosign.key`: a PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign wrote
//!   `ENCRYPTED COSIGN PRIVATE KEY`; both are read) whose body is JSON:
//!   `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":B64},
//!   "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}`. The
//!   secretbox key is scrypt(password, salt); the plaintext is the PKCS#8 DER
//!   of the private key. An empty password is allowed, as with cosign's
//!   `COSIGN_PASSWORD=`.
//!
//! Decrypted key material and derived keys are wiped when dropped.

use crate::error::OciError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The PEM label current cosign writes.
const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label older cosign wrote.
const LEGACY_PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// cosign's scrypt cost: N = 2^16 (64 MiB, about a quarter second).
const LOG_N: u8 = 16;
/// Key files are a few hundred bytes; anything much larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A private key that signs pushes.
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A trusted public key, with the file it came from (errors name it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    key: p256::ecdsa::VerifyingKey,
    path: PathBuf,
}

/// The files [`signing_keygen`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKeys {
    /// `cosign.key`, mode 0600.
    pub private_key: PathBuf,
    /// `cosign.pub`.
    pub public_key: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Writes a new key pair to `out_dir/cosign.key` (encrypted with
/// `password`, mode 0600) and `out_dir/cosign.pub`.
///
/// # Errors
///
/// [`OciError::KeyFile`] if either file already exists (keys are never
/// overwritten) or cannot be written.
pub fn signing_keygen(out_dir: &Path, password: &[u8]) -> Result<GeneratedKeys, OciError> {
    let private_key = out_dir.join("cosign.key");
    let public_key = out_dir.join("cosign.pub");
    for p in [&private_key, &public_key] {
        if p.exists() {
            return Err(OciError::key_file(
                p,
                "already exists; keys are never overwritten: move it away or choose another directory",
            ));
        }
    }
    let key = random_key().map_err(|r| OciError::key_file(&private_key, r))?;
    let private_pem = encrypt(&key, password).map_err(|r| OciError::key_file(&private_key, r))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| OciError::key_file(&public_key, e.to_string()))?;
    write_new(&private_key, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_key, public_pem.as_bytes(), 0o644) {
        // Half a key pair is worse than none.
        let _ = std::fs::remove_file(&private_key);
        return Err(e);
    }
    Ok(GeneratedKeys {
        private_key,
        public_key,
    })
}

impl SigningKey {
    /// Reads and decrypts a cosign private key file.
    ///
    /// # Errors
    ///
    /// [`OciError::KeyFile`] naming the file: unreadable, not a cosign key,
    /// wrong password, unsupported parameters.
    pub fn load(path: &Path, password: &[u8]) -> Result<SigningKey, OciError> {
        let text = read_key_file(path)?;
        Self::from_pem(path, &text, password)
    }

    /// Decrypts a cosign private key from its PEM text; `path` is what
    /// errors call it.
    pub fn from_pem(path: &Path, text: &str, password: &[u8]) -> Result<SigningKey, OciError> {
        let key = decrypt(text, password).map_err(|r| OciError::key_file(path, r))?;
        Ok(SigningKey {
            key,
            path: path.to_path_buf(),
        })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: *self.key.verifying_key(),
            path: self.path.clone(),
        }
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ECDSA P-256 over SHA-256 of `message`, ASN.1 DER (what cosign stores,
    /// base64-encoded).
    pub(crate) fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

impl VerifyingKey {
    /// Reads a PEM public key file (`cosign.pub`).
    ///
    /// # Errors
    ///
    /// [`OciError::KeyFile`] naming the file.
    pub fn load(path: &Path) -> Result<VerifyingKey, OciError> {
        let text = read_key_file(path)?;
        Self::from_pem(path, &text)
    }

    /// Parses a PEM public key; `path` is what errors call it.
    pub fn from_pem(path: &Path, text: &str) -> Result<VerifyingKey, OciError> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
            OciError::key_file(
                path,
                format!(
                    "not an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----), as `cosign generate-key-pair` writes to cosign.pub ({e})"
                ),
            )
        })?;
        Ok(VerifyingKey {
            key,
            path: path.to_path_buf(),
        })
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key as PEM (SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Whether `der` is this key's valid signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        p256::ecdsa::Signature::from_der(der)
            .is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }
}

/// The file names of `keys`, comma-separated, for error messages.
pub(crate) fn key_names(keys: &[VerifyingKey]) -> String {
    keys.iter()
        .map(|k| k.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_key_file(path: &Path) -> Result<String, OciError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| OciError::key_file(path, e.to_string()))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| OciError::key_file(path, e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(OciError::key_file(path, "is too large to be a key file"));
    }
    Ok(text)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), OciError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| OciError::key_file(path, format!("cannot create it: {e}")))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| OciError::key_file(path, format!("cannot write it: {e}")))
}

fn random_key() -> Result<p256::ecdsa::SigningKey, String> {
    // Rejection sampling: a uniformly random 32-byte string is a valid
    // scalar (nonzero, below the group order) with probability 1 - 2^-32.
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| format!("no randomness: {e}"))?;
        if let Ok(k) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
            return Ok(k);
        }
    }
}

fn scrypt_key(password: &[u8], salt: &[u8], log_n: u8) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = scrypt::Params::new(log_n, 8, 1, 32).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut()).map_err(|e| e.to_string())?;
    Ok(key)
}

fn encrypt(key: &p256::ecdsa::SigningKey, password: &[u8]) -> Result<String, String> {
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
    let box_key = scrypt_key(password, &salt, LOG_N)?;
    let ciphertext = XSalsa20Poly1305::new(box_key.as_ref().into())
        .encrypt((&nonce).into(), der.as_bytes())
        .map_err(|_| "encryption failed".to_string())?;
    let body = EncryptedKey {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                N: 1 << LOG_N,
                r: 8,
                p: 1,
            },
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(ciphertext),
    };
    let json = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    pem::encode_string(PRIVATE_LABEL, LineEnding::LF, &json).map_err(|e| e.to_string())
}

fn decrypt(text: &str, password: &[u8]) -> Result<p256::ecdsa::SigningKey, String> {
    const NOT_COSIGN: &str = "not a cosign private key (-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----), as `cosign generate-key-pair` or `toka-host signing keygen` writes to cosign.key";
    let (label, json) =
        pem::decode_vec(text.trim().as_bytes()).map_err(|_| NOT_COSIGN.to_string())?;
    if label != PRIVATE_LABEL && label != LEGACY_PRIVATE_LABEL {
        return Err(format!("{NOT_COSIGN}; it is a PEM `{label}`"));
    }
    let body: EncryptedKey =
        serde_json::from_slice(&json).map_err(|e| format!("{NOT_COSIGN} ({e})"))?;
    if body.kdf.name != "scrypt" || body.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "uses {} with {}; only scrypt with nacl/secretbox (what cosign writes) is supported",
            body.kdf.name, body.cipher.name
        ));
    }
    let ScryptParams { N: n, r, p } = body.kdf.params;
    // The parameters sigstore accepts; anything else is not a cosign key, and
    // an attacker-chosen N could make loading take forever.
    if !matches!(n, 32768 | 65536) || r != 8 || p != 1 {
        return Err(format!(
            "has scrypt parameters N={n}, r={r}, p={p}; cosign keys use N=32768 or 65536, r=8, p=1"
        ));
    }
    let decode = |what: &str, s: &str| B64.decode(s).map_err(|e| format!("bad {what}: {e}"));
    let salt = decode("salt", &body.kdf.salt)?;
    let nonce = decode("nonce", &body.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &body.ciphertext)?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| "bad nonce: not 24 bytes".to_string())?;
    let box_key = scrypt_key(password, &salt, n.trailing_zeros() as u8)?;
    let der = Zeroizing::new(
        XSalsa20Poly1305::new(box_key.as_ref().into())
            .decrypt((&nonce).into(), ciphertext.as_slice())
            .map_err(|_| {
                "cannot decrypt it: wrong password (give the one used with `signing keygen` or `cosign generate-key-pair`, in COSIGN_PASSWORD)".to_string()
            })?,
    );
    p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|e| {
        format!("decrypted, but it is not an ECDSA P-256 key (only P-256 cosign keys are supported): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated by cosign (empty password), from sigstore-rs's test data
    /// (Apache-2.0).
    const COSIGN_KEY: &str =
        include_str!("../tests/data/cosign_generated_encrypted_empty_private.key");
    /// An older cosign key (label `ENCRYPTED COSIGN PRIVATE KEY`, N = 32768,
    /// password `123`), from sigstore-rs's test data (Apache-2.0).
    const LEGACY_KEY: &str = include_str!("../tests/data/ecdsa_encrypted_private.key");

    #[test]
    fn decrypts_keys_written_by_cosign() {
        let k = SigningKey::from_pem(Path::new("cosign.key"), COSIGN_KEY, b"").expect("cosign key");
        let sig = k.sign_der(b"payload");
        assert!(k.verifying_key().verifies(b"payload", &sig));
        SigningKey::from_pem(Path::new("old.key"), LEGACY_KEY, b"123").expect("legacy key");
    }

    #[test]
    fn wrong_password_says_so() {
        let e = SigningKey::from_pem(Path::new("x/cosign.key"), COSIGN_KEY, b"nope")
            .expect_err("wrong password");
        let m = e.to_string();
        assert!(
            m.contains("x/cosign.key") && m.contains("wrong password"),
            "{m}"
        );
    }

    #[test]
    fn keygen_round_trips_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = signing_keygen(dir.path(), b"pw").expect("keygen");
        let mode = std::fs::metadata(&keys.private_key)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&keys.private_key).expect("read");
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let sk = SigningKey::load(&keys.private_key, b"pw").expect("load");
        let vk = VerifyingKey::load(&keys.public_key).expect("pub");
        assert_eq!(sk.verifying_key().key, vk.key);
        assert!(vk.verifies(b"m", &sk.sign_der(b"m")));
        assert!(!vk.verifies(b"other", &sk.sign_der(b"m")));
        let e = signing_keygen(dir.path(), b"pw").expect_err("exists");
        assert!(e.to_string().contains("never overwritten"), "{e}");
    }

    #[test]
    fn empty_passwords_are_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = signing_keygen(dir.path(), b"").expect("keygen");
        SigningKey::load(&keys.private_key, b"").expect("load");
    }

    #[test]
    fn a_public_key_is_not_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = signing_keygen(dir.path(), b"").expect("keygen");
        let e = SigningKey::load(&keys.public_key, b"").expect_err("public");
        assert!(e.to_string().contains("PUBLIC KEY"), "{e}");
        let e = VerifyingKey::load(&keys.private_key).expect_err("private");
        assert!(e.to_string().contains("cosign.pub"), "{e}");
    }
}
