//! Reading DMARC aggregate reports from an S3 bucket, where an SES receipt rule stores each
//! incoming message as one object under a prefix: listing the prefix, fetching an object's
//! bytes within a bound, and remembering what was read ([`Seen`]) so that each pass fetches only
//! the objects that are new or changed. Nothing is ever written to the bucket: the credentials
//! need `s3:ListBucket` on the bucket and `s3:GetObject` under the prefix, no more.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::SharedCredentialsProvider;
use aws_sdk_s3::types::Object as ListedObject;

use crate::aws;

/// The most keys one listing of a prefix takes: past it the listing stops with
/// [`Error::TooManyKeys`] rather than hold an unbounded list (a lifecycle rule that expires
/// old messages keeps a prefix well below it).
pub const MAX_KEYS: usize = 1_000_000;

/// Where the messages are, and how the exporter reaches them: a source's `s3:` settings.
pub use crate::config::S3Source as Settings;

impl Settings {
    /// `bucket/prefix`, as errors name the place.
    fn place(&self) -> String {
        format!("{}/{}", self.bucket, self.prefix)
    }
}

/// The S3 client of `settings`: the credential chain or `profile`, the role, retries and time
/// limits of every AWS client ([`crate::aws`]); a custom endpoint is addressed path-style
/// (`ENDPOINT/BUCKET/KEY`), which moto and MinIO need.
///
/// Nothing is sent yet: credentials are looked up at the first call, so a missing credential
/// shows as that call's error. `credentials`, when given, replace the chain and `profile`.
pub async fn connect(
    settings: &Settings,
    credentials: Option<&SharedCredentialsProvider>,
) -> Client {
    let access = aws::Access {
        region: &settings.region,
        profile: settings.profile.as_deref(),
        role_arn: settings.role_arn.as_deref(),
    };
    let shared = aws::sdk_config(access, credentials).await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its key, the prefix included.
    pub key: String,
    /// Its ETag, without the quotes S3 writes around it: it changes when the object does.
    pub etag: String,
    /// When it was last written, Unix seconds.
    pub last_modified_unix: i64,
    /// Its size in bytes.
    pub size: u64,
}

/// Why an object or a listing could not be read: what, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `ListObjectsV2` failed: no such bucket, access denied, no connection, no credentials…
    #[error("s3 {place}: list: {cause}")]
    List {
        /// `bucket/prefix`.
        place: String,
        /// The SDK's error and its causes.
        cause: String,
    },
    /// The prefix holds more than [`MAX_KEYS`] keys, or the server's pages do not end.
    #[error("s3 {place}: list: {cause}")]
    Unbounded {
        /// `bucket/prefix`.
        place: String,
        /// What was wrong with the listing.
        cause: String,
    },
    /// `GetObject` failed, or the object's body broke off.
    #[error("s3 {place}: get {key}: {cause}")]
    Get {
        /// `bucket/prefix`.
        place: String,
        /// The object's key.
        key: String,
        /// The SDK's error and its causes.
        cause: String,
    },
}

/// An object larger than the most the caller takes: its body was not read, or not past the
/// bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// Its size, when the server said it (`Content-Length`).
    pub size: Option<u64>,
    /// The bound it is over.
    pub max_bytes: u64,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.size {
            Some(size) => write!(f, "{size} bytes, more than {}", self.max_bytes),
            None => write!(f, "more than {} bytes", self.max_bytes),
        }
    }
}

impl std::error::Error for TooLarge {}

/// Lists every object under the prefix (every page of `ListObjectsV2`) and returns those
/// modified at or after `since_unix`, in key order. Folder placeholders (an empty object whose
/// key ends in `/`) and objects the server gives no key or modification time are passed over.
pub async fn list(
    client: &Client,
    settings: &Settings,
    since_unix: i64,
) -> Result<Vec<Object>, Error> {
    let mut listing = Listing::new(since_unix, MAX_KEYS);
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&settings.bucket)
            .set_prefix(Some(settings.prefix.clone()).filter(|p| !p.is_empty()))
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| Error::List {
                place: settings.place(),
                cause: aws::causes(&e),
            })?;
        let next = match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => Some(next.to_string()),
            _ => None,
        };
        listing
            .take(page.contents(), token.as_deref(), next.as_deref())
            .map_err(|cause| Error::Unbounded {
                place: settings.place(),
                cause,
            })?;
        match next {
            Some(next) => token = Some(next),
            None => return Ok(listing.objects),
        }
    }
}

/// A listing being taken, page by page, within its bound.
struct Listing {
    /// The objects in the window so far.
    objects: Vec<Object>,
    /// Every key listed so far, in the window or not: what the bound counts.
    keys: usize,
    since_unix: i64,
    max_keys: usize,
}

impl Listing {
    fn new(since_unix: i64, max_keys: usize) -> Listing {
        Listing {
            objects: Vec::new(),
            keys: 0,
            since_unix,
            max_keys,
        }
    }

    /// Takes one page, listed with continuation token `token` and pointing at `next`.
    fn take(
        &mut self,
        page: &[ListedObject],
        token: Option<&str>,
        next: Option<&str>,
    ) -> Result<(), String> {
        self.keys = self.keys.saturating_add(page.len());
        if self.keys > self.max_keys {
            return Err(format!(
                "more than {} keys under the prefix; expire old messages (a lifecycle rule) or \
                 narrow the prefix",
                self.max_keys
            ));
        }
        if next.is_some() && next == token {
            return Err("the server gave the same continuation token twice".to_string());
        }
        let objects = page.iter().filter_map(from_listed);
        self.objects
            .extend(objects.filter(|o| o.last_modified_unix >= self.since_unix));
        Ok(())
    }
}

/// A listed object as the caller sees it; `None` for a folder placeholder or an object without
/// a key or a modification time.
fn from_listed(listed: &ListedObject) -> Option<Object> {
    let key = listed.key()?;
    let size = u64::try_from(listed.size().unwrap_or(0)).unwrap_or(0);
    if key.ends_with('/') && size == 0 {
        return None;
    }
    Some(Object {
        key: key.to_string(),
        etag: unquoted(listed.e_tag().unwrap_or("")),
        last_modified_unix: listed.last_modified()?.secs(),
        size,
    })
}

/// An ETag without the quotes around it (S3 quotes it; some servers do not).
fn unquoted(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

/// Fetches the object `key`, at most `max_bytes` of it. An object whose `Content-Length` is
/// larger is [`TooLarge`] without its body being read; the body is read with a bound all the
/// same, so however long it turns out to be (a server that sends no length, or a wrong one), no
/// more than `max_bytes + 1` bytes of it are kept.
pub async fn get(
    client: &Client,
    settings: &Settings,
    key: &str,
    max_bytes: u64,
) -> Result<Result<Vec<u8>, TooLarge>, Error> {
    let failed = |cause: String| Error::Get {
        place: settings.place(),
        key: key.to_string(),
        cause,
    };
    let output = client
        .get_object()
        .bucket(&settings.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| failed(aws::causes(&e)))?;
    let size = output
        .content_length()
        .and_then(|length| u64::try_from(length).ok());
    if size.is_some_and(|size| size > max_bytes) {
        // Dropping the response drops its connection with the body unread.
        return Ok(Err(TooLarge { size, max_bytes }));
    }
    let bound = max_bytes.saturating_add(1);
    let mut bytes = Vec::with_capacity(usize::try_from(size.unwrap_or(0)).unwrap_or(0));
    let mut body = output.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| failed(aws::causes(&e)))?;
        let room = usize::try_from(bound - bytes.len() as u64).unwrap_or(usize::MAX);
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() as u64 > max_bytes {
            return Ok(Err(TooLarge {
                size: None,
                max_bytes,
            }));
        }
    }
    Ok(Ok(bytes))
}

/// The objects already read, by key and ETag, kept by the caller between passes: an object is
/// fetched once, and again only when its ETag changes. A key no longer listed (deleted, or out
/// of the window) is forgotten, so this holds no more keys than the latest listing.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Key → the ETag it had when it was read.
    read: HashMap<String, String>,
}

/// What one pass over a listing is to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// The objects to fetch: new keys, and keys whose ETag changed since they were read.
    pub fetch: Vec<Object>,
    /// The keys read before that the listing no longer holds: forgotten now.
    pub gone: Vec<String>,
}

impl Seen {
    /// Nothing read yet.
    pub fn new() -> Seen {
        Seen::default()
    }

    /// Given the latest listing, what to fetch and which keys left it; the keys that left are
    /// forgotten.
    pub fn pass(&mut self, listing: Vec<Object>) -> Pass {
        let listed: HashMap<&str, &str> = listing
            .iter()
            .map(|o| (o.key.as_str(), o.etag.as_str()))
            .collect();
        let mut gone: Vec<String> = self
            .read
            .keys()
            .filter(|key| !listed.contains_key(key.as_str()))
            .cloned()
            .collect();
        gone.sort();
        for key in &gone {
            self.read.remove(key);
        }
        let fetch = listing
            .into_iter()
            .filter(|o| self.read.get(&o.key) != Some(&o.etag))
            .collect();
        Pass { fetch, gone }
    }

    /// Records that `object` was read, whatever it held (a report or not, [`TooLarge`] or
    /// not): it is not fetched again until its ETag changes. An object whose fetch failed is
    /// not recorded, so the next pass tries it again.
    pub fn read(&mut self, object: &Object) {
        self.read.insert(object.key.clone(), object.etag.clone());
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.read.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.read.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::primitives::DateTime;

    use super::*;

    fn listed(key: &str, etag: &str, modified: i64, size: i64) -> ListedObject {
        ListedObject::builder()
            .key(key)
            .e_tag(etag)
            .last_modified(DateTime::from_secs(modified))
            .size(size)
            .build()
    }

    fn object(key: &str, etag: &str) -> Object {
        Object {
            key: key.to_string(),
            etag: etag.to_string(),
            last_modified_unix: 100,
            size: 10,
        }
    }

    #[test]
    fn a_listing_keeps_the_window_and_passes_over_placeholders() {
        let mut listing = Listing::new(100, 10);
        let page = [
            listed("dmarc/", "\"d41d8cd98f00b204e9800998ecf8427e\"", 200, 0),
            listed("dmarc/old", "\"a\"", 99, 5),
            listed("dmarc/edge", "\"b\"", 100, 5),
            listed("dmarc/new", "c", 101, 5),
            ListedObject::builder().key("dmarc/undated").build(),
        ];
        listing.take(&page, None, None).unwrap();
        let keys: Vec<(&str, &str)> = listing
            .objects
            .iter()
            .map(|o| (o.key.as_str(), o.etag.as_str()))
            .collect();
        assert_eq!(keys, [("dmarc/edge", "b"), ("dmarc/new", "c")]);
    }

    #[test]
    fn a_listing_stops_past_its_bound_or_on_a_repeated_token() {
        let page: Vec<ListedObject> = (0..3).map(|i| listed(&i.to_string(), "e", 0, 1)).collect();
        let mut listing = Listing::new(0, 5);
        listing.take(&page, None, Some("t1")).unwrap();
        let error = listing.take(&page, Some("t1"), Some("t2")).unwrap_err();
        assert!(
            error.starts_with("more than 5 keys under the prefix"),
            "{error}"
        );

        let mut listing = Listing::new(0, 100);
        listing.take(&page, None, Some("t1")).unwrap();
        let error = listing.take(&page, Some("t1"), Some("t1")).unwrap_err();
        assert_eq!(error, "the server gave the same continuation token twice");
    }

    #[test]
    fn seen_fetches_the_new_and_the_changed_and_forgets_the_gone() {
        let mut seen = Seen::new();
        let first = vec![object("a", "1"), object("b", "1"), object("c", "1")];
        let pass = seen.pass(first.clone());
        assert_eq!(pass.fetch, first);
        assert!(pass.gone.is_empty());
        // `c`'s fetch failed: not recorded, fetched again.
        seen.read(&first[0]);
        seen.read(&first[1]);

        let pass = seen.pass(vec![object("a", "2"), object("b", "1"), object("c", "1")]);
        assert_eq!(pass.fetch, [object("a", "2"), object("c", "1")]);
        for object in &pass.fetch {
            seen.read(object);
        }
        assert_eq!(seen.len(), 3);

        let pass = seen.pass(vec![object("c", "1")]);
        assert!(pass.fetch.is_empty());
        assert_eq!(pass.gone, ["a", "b"]);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn too_large_says_what_it_knows() {
        let known = TooLarge {
            size: Some(2000),
            max_bytes: 1000,
        };
        assert_eq!(known.to_string(), "2000 bytes, more than 1000");
        let unknown = TooLarge {
            size: None,
            max_bytes: 1000,
        };
        assert_eq!(unknown.to_string(), "more than 1000 bytes");
    }
}
