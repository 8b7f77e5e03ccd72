//! DKIM key records (RFC 6376 section 3.6.1): the tag list published as TXT, and the public key in it.
//!
//! Parsing is strict where a verifier would reject the record and lenient where verifiers are
//! (whitespace anywhere in the base64, tags in any order, unknown tags ignored).

use std::fmt;

use base64::Engine as _;
use sha2::Digest as _;
use spki::der::Decode as _;

/// `rsaEncryption`, the algorithm of an RSA SubjectPublicKeyInfo.
const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-Ed25519`, seen when a publisher wraps an ed25519 key in SubjectPublicKeyInfo by mistake.
const ID_ED25519: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");

/// A usable DKIM public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DkimKey {
    /// The key algorithm from `k=`.
    pub key_type: KeyType,
    /// Key size: the RSA modulus in bits, or 256 for ed25519.
    pub bits: u32,
    /// What the record's `t=` and `h=` tags say of it.
    pub flags: KeyFlags,
    /// The SHA-256 of the decoded public key (`p=`), which tells one key from another whatever
    /// the record's other tags or whitespace.
    pub fingerprint: Fingerprint,
}

/// The first 8 bytes of the SHA-256 of a decoded public key: `sha256:` and 16 hex digits, the
/// `fingerprint` label of `dkim_key_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fingerprint(pub [u8; 8]);

impl Fingerprint {
    /// The fingerprint of the public key bytes `der` (as `p=` decodes).
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = sha2::Sha256::digest(der);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Fingerprint(first)
    }
}

impl fmt::Display for Fingerprint {
    /// `sha256:` and the 16 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The tags of a key record that change how receivers treat signatures made with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyFlags {
    /// `t=y`: the domain is testing DKIM; receivers treat its signatures as unsigned mail.
    pub testing: bool,
    /// `h=` allows only `sha1`, which RFC 8301 forbids verifiers to accept.
    pub sha1_only: bool,
}

impl KeyFlags {
    /// The flags `t=` and `h=` (colon-separated lists, any case) set.
    fn from_tags(t: Option<&str>, h: Option<&str>) -> KeyFlags {
        let list = |value: Option<&str>| -> Vec<String> {
            value
                .unwrap_or_default()
                .split(':')
                .map(|item| item.trim().to_ascii_lowercase())
                .filter(|item| !item.is_empty())
                .collect()
        };
        let hashes = list(h);
        KeyFlags {
            testing: list(t).iter().any(|flag| flag == "y"),
            sha1_only: !hashes.is_empty()
                && hashes.iter().any(|hash| hash == "sha1")
                && !hashes.iter().any(|hash| hash == "sha256"),
        }
    }
}

/// The algorithms RFC 6376 and RFC 8463 define for `k=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `k=rsa`, the default.
    Rsa,
    /// `k=ed25519` (RFC 8463).
    Ed25519,
}

/// Why a TXT value is not a usable DKIM key record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The tag list itself is malformed.
    #[error("not a DKIM tag list: {0}")]
    Syntax(String),
    /// `v=` is present but not `DKIM1`, or not the first tag.
    #[error("{0}")]
    Version(String),
    /// There is no `p=` tag.
    #[error("no p= tag: the record publishes no key")]
    NoKey,
    /// `p=` is empty: the key was revoked.
    #[error("p= is empty: the key is revoked")]
    Revoked,
    /// `k=` names an algorithm nobody verifies.
    #[error("unknown key type k={0}")]
    UnknownKeyType(String),
    /// `p=` is not base64.
    #[error("p= is not valid base64")]
    Base64,
    /// `p=` decodes, but not to a key of the given type.
    #[error("p= is not a readable {0}")]
    BadKey(&'static str),
}

/// Joins the strings of a TXT record the way DKIM verifiers do: concatenated, nothing between.
pub fn join_txt<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut bytes = Vec::new();
    for string in strings {
        bytes.extend_from_slice(string);
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Whether a TXT value looks like it is meant to be a DKIM key record, for picking the right
/// record when a name holds several TXT records.
pub fn looks_like_key_record(value: &str) -> bool {
    parse_tags(value).is_ok_and(|tags| is_key_record(&tags))
}

/// Whether a parsed tag list is meant as a key record: it has `p=`, or a `v=` of DKIM's (an
/// SPF record's `v=spf1` is not one).
fn is_key_record(tags: &[(&str, &str)]) -> bool {
    tags.iter().any(|(t, v)| {
        *t == "p"
            || (*t == "v"
                && v.get(..4)
                    .is_some_and(|start| start.eq_ignore_ascii_case("DKIM")))
    })
}

/// [`parse_key_record`] of a value that [`looks_like_key_record`], `None` for one that does not,
/// with the tags parsed once.
pub fn read_key_record(value: &str) -> Option<Result<DkimKey, KeyError>> {
    let tags = parse_tags(value).ok()?;
    is_key_record(&tags).then(|| key_from_tags(&tags))
}

/// Parses a DKIM key record and decodes its public key.
pub fn parse_key_record(value: &str) -> Result<DkimKey, KeyError> {
    key_from_tags(&parse_tags(value)?)
}

/// The key a parsed tag list publishes.
fn key_from_tags(tags: &[(&str, &str)]) -> Result<DkimKey, KeyError> {
    let get = |name: &str| tags.iter().find(|(t, _)| *t == name).map(|(_, v)| *v);

    if let Some(position) = tags.iter().position(|(t, _)| *t == "v") {
        if position != 0 {
            return Err(KeyError::Version("v= must be the first tag".into()));
        }
        if tags[0].1 != "DKIM1" {
            return Err(KeyError::Version(format!("v={} is not DKIM1", tags[0].1)));
        }
    }
    let key_type = match get("k").unwrap_or("rsa") {
        "rsa" => KeyType::Rsa,
        "ed25519" => KeyType::Ed25519,
        other => return Err(KeyError::UnknownKeyType(other.to_string())),
    };
    let p = get("p").ok_or(KeyError::NoKey)?;
    // Whitespace is allowed anywhere in the base64; the usual key has none and is decoded as is.
    let p: std::borrow::Cow<'_, str> = if p.bytes().any(|b| b.is_ascii_whitespace()) {
        p.chars().filter(|c| !c.is_ascii_whitespace()).collect()
    } else {
        p.into()
    };
    if p.is_empty() {
        return Err(KeyError::Revoked);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(p.as_bytes())
        .map_err(|_| KeyError::Base64)?;
    let bits = match key_type {
        KeyType::Rsa => rsa_modulus_bits(&der).ok_or(KeyError::BadKey("RSA public key"))?,
        KeyType::Ed25519 => {
            if let Ok(raw) = <[u8; 32]>::try_from(der.as_slice()) {
                // The key must be a point on the curve, or no signature can verify.
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| KeyError::BadKey("ed25519 key (not a point on the curve)"))?;
                256
            } else {
                let wrapped = spki::SubjectPublicKeyInfoRef::from_der(&der)
                    .is_ok_and(|info| info.algorithm.oid == ID_ED25519);
                return Err(KeyError::BadKey(if wrapped {
                    "ed25519 key: publish the raw 32-byte key (RFC 8463), not SubjectPublicKeyInfo"
                } else {
                    "ed25519 key (32 bytes)"
                }));
            }
        }
    };
    Ok(DkimKey {
        key_type,
        bits,
        flags: KeyFlags::from_tags(get("t"), get("h")),
        fingerprint: Fingerprint::of(&der),
    })
}

/// Splits a tag list into `(tag, value)` pairs, values trimmed of surrounding whitespace.
fn parse_tags(value: &str) -> Result<Vec<(&str, &str)>, KeyError> {
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for spec in value.split(';') {
        if spec.trim().is_empty() {
            // A trailing semicolon is allowed; so, leniently, is an empty spec in the middle.
            continue;
        }
        let (tag, val) = spec
            .split_once('=')
            .ok_or_else(|| KeyError::Syntax(format!("{:?} has no '='", spec.trim())))?;
        let tag = tag.trim();
        let valid_tag = tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_tag {
            return Err(KeyError::Syntax(format!("invalid tag name {tag:?}")));
        }
        if tags.iter().any(|(t, _)| *t == tag) {
            return Err(KeyError::Syntax(format!("tag {tag}= appears twice")));
        }
        tags.push((tag, val.trim()));
    }
    if tags.is_empty() {
        return Err(KeyError::Syntax("empty record".into()));
    }
    Ok(tags)
}

/// The modulus size of an RSA key given as SubjectPublicKeyInfo (what RFC 6376 specifies) or as
/// a bare PKCS#1 RSAPublicKey (what some old publishers used, and verifiers still accept).
fn rsa_modulus_bits(der: &[u8]) -> Option<u32> {
    let pkcs1_der = match spki::SubjectPublicKeyInfoRef::from_der(der) {
        Ok(info) if info.algorithm.oid == RSA_ENCRYPTION => info.subject_public_key.as_bytes()?,
        Ok(_) => return None,
        Err(_) => der,
    };
    let key = pkcs1::RsaPublicKey::<spki::der::asn1::UintRef<'_>>::from_der(pkcs1_der).ok()?;
    let modulus = key.modulus.as_bytes();
    let first = *modulus.first()?;
    let bits = modulus.len() as u32 * 8 - first.leading_zeros();
    (bits > 0).then_some(bits)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Base64 SubjectPublicKeyInfo of a freshly generated RSA key, as publishers put in `p=`.
    pub(crate) fn rsa_public_key_base64(bits: usize) -> String {
        use rsa::pkcs8::EncodePublicKey as _;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).unwrap();
        let der = key.to_public_key().to_public_key_der().unwrap();
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
    }

    #[test]
    fn rsa_key_with_whitespace_and_any_tag_order() {
        let key = rsa_public_key_base64(1024);
        let spaced: String = key
            .as_bytes()
            .chunks(40)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" \t");
        let record = format!("k=rsa; t=s; p={spaced} ; h=sha256;");
        let der = base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap();
        assert_eq!(
            parse_key_record(&record),
            Ok(DkimKey {
                key_type: KeyType::Rsa,
                bits: 1024,
                flags: KeyFlags::default(),
                fingerprint: Fingerprint::of(&der),
            })
        );
        // The same key in another record, other tags and spacing: the same fingerprint.
        assert_eq!(
            parse_key_record(&format!("v=DKIM1; t=y; p={key}")).map(|k| k.fingerprint),
            Ok(Fingerprint::of(&der))
        );
        let record = format!("v=DKIM1;p={}", rsa_public_key_base64(2048));
        assert_eq!(parse_key_record(&record).map(|k| k.bits), Ok(2048));
    }

    #[test]
    fn testing_and_hash_flags() {
        let key = rsa_public_key_base64(1024);
        let flags =
            |tags: &str| parse_key_record(&format!("v=DKIM1; {tags} p={key}")).map(|k| k.flags);
        assert_eq!(flags(""), Ok(KeyFlags::default()));
        assert_eq!(
            flags("t=y;"),
            Ok(KeyFlags {
                testing: true,
                sha1_only: false
            })
        );
        assert_eq!(
            flags("t=s : Y;"),
            Ok(KeyFlags {
                testing: true,
                sha1_only: false
            })
        );
        assert_eq!(flags("t=s;"), Ok(KeyFlags::default()));
        assert_eq!(
            flags("h=sha1;"),
            Ok(KeyFlags {
                testing: false,
                sha1_only: true
            })
        );
        assert_eq!(flags("h=sha1:sha256;"), Ok(KeyFlags::default()));
        assert_eq!(flags("h=SHA256;"), Ok(KeyFlags::default()));
    }

    #[test]
    fn rejections() {
        let key = rsa_public_key_base64(1024);
        assert_eq!(
            parse_key_record("v=DKIM1; k=rsa; p="),
            Err(KeyError::Revoked)
        );
        assert_eq!(parse_key_record("v=DKIM1; k=rsa"), Err(KeyError::NoKey));
        assert_eq!(parse_key_record("v=DKIM1; p=!!!"), Err(KeyError::Base64));
        assert_eq!(
            parse_key_record("v=DKIM1; p=aGVsbG8="),
            Err(KeyError::BadKey("RSA public key"))
        );
        assert!(matches!(
            parse_key_record(&format!("k=rsa; v=DKIM1; p={key}")),
            Err(KeyError::Version(_))
        ));
        assert!(matches!(
            parse_key_record(&format!("v=DKIM2; p={key}")),
            Err(KeyError::Version(_))
        ));
        assert_eq!(
            parse_key_record("k=dsa; p=aGVsbG8="),
            Err(KeyError::UnknownKeyType("dsa".into()))
        );
        assert!(matches!(
            parse_key_record("hello world"),
            Err(KeyError::Syntax(_))
        ));
        assert!(matches!(
            parse_key_record("p=a; p=b"),
            Err(KeyError::Syntax(_))
        ));
        assert!(matches!(parse_key_record(""), Err(KeyError::Syntax(_))));
    }

    /// Base64 of a freshly generated ed25519 public key, raw as RFC 8463 publishes it.
    pub(crate) fn ed25519_public_key_base64() -> String {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    }

    #[test]
    fn ed25519_is_raw_32_bytes() {
        let raw = ed25519_public_key_base64();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&raw)
            .unwrap();
        assert_eq!(
            parse_key_record(&format!("v=DKIM1; k=ed25519; p={raw}")),
            Ok(DkimKey {
                key_type: KeyType::Ed25519,
                bits: 256,
                flags: KeyFlags::default(),
                fingerprint: Fingerprint::of(&bytes),
            })
        );
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert!(matches!(
            parse_key_record(&format!("k=ed25519; p={short}")),
            Err(KeyError::BadKey(_))
        ));
        // An RSA key under k=ed25519 is not an ed25519 key.
        let rsa = rsa_public_key_base64(1024);
        assert!(matches!(
            parse_key_record(&format!("k=ed25519; p={rsa}")),
            Err(KeyError::BadKey(_))
        ));
        // 32 bytes that are not a curve point (y = 2 has no x on edwards25519).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let not_a_point = base64::engine::general_purpose::STANDARD.encode(not_a_point);
        assert!(matches!(
            parse_key_record(&format!("k=ed25519; p={not_a_point}")),
            Err(KeyError::BadKey(_))
        ));
    }

    #[test]
    fn fingerprint_is_the_sha256_prefix_of_the_key_bytes() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(
            Fingerprint::of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea"
        );
    }

    #[test]
    fn txt_strings_are_joined_without_separator() {
        let parts: [&[u8]; 2] = [b"v=DKIM1; p=MIGf", b"MA0G"];
        assert_eq!(join_txt(parts), "v=DKIM1; p=MIGfMA0G");
        assert_eq!(
            join_txt([b"caf\xc3\xa9 \xff".as_slice()]),
            "caf\u{e9} \u{fffd}"
        );
        assert!(looks_like_key_record("v=DKIM1; p=abc"));
        assert!(!looks_like_key_record("google-site-verification=abc"));
        assert!(!looks_like_key_record("v=spf1 include:amazonses.com -all"));
        assert!(looks_like_key_record("v=DKIM2"));
        assert_eq!(read_key_record("google-site-verification=abc"), None);
        assert_eq!(
            read_key_record("v=DKIM1; k=rsa"),
            Some(Err(KeyError::NoKey))
        );
        let key = rsa_public_key_base64(1024);
        assert_eq!(
            read_key_record(&format!("v=DKIM1; p={key}")).map(|k| k.map(|k| k.bits)),
            Some(Ok(1024))
        );
    }
}
