//! The users file (`[auth] users_file`): one `name:hash` line per user who may log in.
//!
//! New hashes are Argon2id PHC strings (`$argon2id$v=19$m=...`). Lines written by temBoard
//! agent 7 (see [`super::temboard_hash`]) are accepted as they are, so an installation moving to
//! dbagent keeps its users; each such hash is replaced by Argon2id the next time its user logs in
//! successfully, since only then is the password at hand.
//!
//! Blank lines and lines starting with `#` are allowed and kept when the file is rewritten.

use super::temboard_hash;
use anyhow::{Context as _, bail};
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, IsTerminal as _, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

const MAX_USERNAME_CHARS: usize = 64;
const MAX_PASSWORD_BYTES: usize = 1024;

/// Verified for a user who does not exist (or whose hash is cheap to check), so that a login
/// costs one Argon2id verification whatever the outcome and its duration does not reveal
/// whether the name is known. Default parameters, like the hashes this agent writes; its output
/// was not computed from any password, so no password can ever match it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZGJhZ2VudC1kdW1teS1zYWx0$e1cWfT5rRdmgSuW3BBJVfH9yB10qqBFamQEAkqZQqaY";

/// Serialises rewrites of users files within this process (logins upgrading hashes while an
/// operator endpoint adds a user), so that one rewrite cannot drop another's change.
static REWRITE: Mutex<()> = Mutex::new(());

/// A username or password this agent will never accept, told apart from wrong credentials so
/// that the API can answer "malformed" as temBoard does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Username,
    Password,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Malformed::Username => "username",
            Malformed::Password => "password",
        };
        write!(f, "Parameter '{name}' is malformed.")
    }
}

impl std::error::Error for Malformed {}

/// 1–64 characters of `[A-Za-z0-9_.@-]`: a superset of temBoard's own rule, and never `:`, which
/// separates the name from its hash in the file.
pub fn validate_username(name: &str) -> Result<(), Malformed> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok { Ok(()) } else { Err(Malformed::Username) }
}

/// 1–1024 bytes: a bound so that nobody makes the agent hash megabytes per attempt.
pub fn validate_password(password: &str) -> Result<(), Malformed> {
    if (1..=MAX_PASSWORD_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(Malformed::Password)
    }
}

/// Shortest user name and password a login or `user add` accepts, as temBoard's agent (which
/// answers "malformed" below them).
const MIN_LOGIN_USERNAME_CHARS: usize = 3;
const MIN_LOGIN_PASSWORD_CHARS: usize = 5;

/// What a login and `user add` accept: [`validate_username`] and [`validate_password`], with
/// temBoard's minimum lengths. Users files are not held to the minimums, so that an existing
/// file keeps loading.
pub fn check_login_shape(name: &str, password: &str) -> Result<(), Malformed> {
    validate_username(name)?;
    if name.chars().count() < MIN_LOGIN_USERNAME_CHARS {
        return Err(Malformed::Username);
    }
    validate_password(password)?;
    if password.chars().count() < MIN_LOGIN_PASSWORD_CHARS {
        return Err(Malformed::Password);
    }
    Ok(())
}

/// An Argon2id PHC string for `password`, with a fresh random salt and the crate's default
/// parameters (m=19456 KiB, t=2, p=1).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    Ok,
    /// Right password, but stored with temBoard's weak hash: call [`Users::upgrade`].
    OkNeedsUpgrade,
    /// Unknown user, wrong password, or malformed input: deliberately not told apart.
    Invalid,
}

#[derive(Clone, PartialEq, Eq)]
enum StoredHash {
    Argon2id(String),
    Temboard([u8; 64]),
}

impl StoredHash {
    /// A digest of the stored hash: tells whether a password changed without
    /// keeping the hash itself anywhere else.
    fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = match self {
            StoredHash::Argon2id(phc) => Sha256::digest(phc.as_bytes()),
            StoredHash::Temboard(bytes) => Sha256::digest(bytes),
        };
        hex::encode(&digest[..16])
    }

    fn parse(text: &str) -> Option<StoredHash> {
        if text.starts_with("$argon2id$") {
            PasswordHash::new(text).ok()?;
            Some(StoredHash::Argon2id(text.to_owned()))
        } else {
            temboard_hash::parse(text).map(StoredHash::Temboard)
        }
    }
}

/// The users file as read at one moment. Re-load it to see changes made since (by
/// `dbagent user add`, or by an upgrade).
#[derive(Clone)]
pub struct Users {
    path: PathBuf,
    users: HashMap<String, StoredHash>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("Users")
            .field("path", &self.path)
            .field("names", &names)
            .finish()
    }
}

impl Users {
    /// Reads and checks the whole file, so that a typo is a start-up error naming the line rather
    /// than a user who silently cannot log in. A missing file is an empty set of users: an agent
    /// used only with API tokens needs none, and `dbagent user add` creates it.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read users file {}", path.display()));
            }
        };
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let Some((name, hash)) = parse_line(line) else {
                continue;
            };
            let at = || format!("{}:{}", path.display(), index + 1);
            if validate_username(name).is_err() {
                bail!(
                    "{}: invalid username {name:?} (1-64 characters of A-Z a-z 0-9 _ . @ -)",
                    at()
                );
            }
            let Some(stored) = StoredHash::parse(hash) else {
                bail!(
                    "{}: the hash of user {name:?} is neither an Argon2id PHC string nor a temBoard agent hash",
                    at()
                );
            };
            if users.contains_key(name) {
                // temBoard used the first line for a name; do the same rather than refuse to start.
                tracing::warn!(
                    "{}: user {name:?} is listed again; this line is ignored",
                    at()
                );
                continue;
            }
            users.insert(name.to_owned(), stored);
        }
        Ok(Users {
            path: path.to_owned(),
            users,
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    #[cfg(test)]
    pub fn contains(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// A fingerprint of `name`'s password hash (see [`Store::create_session`]).
    ///
    /// [`Store::create_session`]: crate::store::Store::create_session
    pub fn fingerprint(&self, name: &str) -> Option<String> {
        self.users.get(name).map(StoredHash::fingerprint)
    }

    /// Every user's fingerprint, to revoke sessions whose credential is gone.
    pub fn fingerprints(&self) -> HashMap<String, String> {
        self.users
            .iter()
            .map(|(name, hash)| (name.clone(), hash.fingerprint()))
            .collect()
    }

    /// Checks a login. Every call costs one Argon2id verification, whether the user exists, has
    /// a temBoard hash, or the input is malformed, so timing does not reveal which.
    pub fn verify(&self, name: &str, password: &str) -> VerifyOutcome {
        let well_formed = validate_username(name).is_ok() && validate_password(password).is_ok();
        match self.users.get(name).filter(|_| well_formed) {
            Some(StoredHash::Argon2id(phc)) => {
                if argon2_matches(phc, password) {
                    VerifyOutcome::Ok
                } else {
                    VerifyOutcome::Invalid
                }
            }
            Some(StoredHash::Temboard(digest)) => {
                burn_one_verification(password);
                if temboard_hash::verify(digest, name, password) {
                    VerifyOutcome::OkNeedsUpgrade
                } else {
                    VerifyOutcome::Invalid
                }
            }
            None => {
                burn_one_verification(if well_formed { password } else { "" });
                VerifyOutcome::Invalid
            }
        }
    }

    /// Adds `name`, or replaces its password, in the file at `path` (created 0600 if absent).
    pub fn set_password(path: &Path, name: &str, password: &str) -> anyhow::Result<()> {
        validate_username(name)?;
        validate_password(password)?;
        let line = format!("{name}:{}", hash_password(password)?);
        rewrite(path, |lines| {
            replace_user(lines, name, Some(line));
            Ok(true)
        })
    }

    /// Removes `name` from the file at `path`; false when it was not there.
    pub fn delete(path: &Path, name: &str) -> anyhow::Result<bool> {
        let mut found = false;
        rewrite(path, |lines| {
            found = replace_user(lines, name, None);
            Ok(found)
        })?;
        Ok(found)
    }

    /// Replaces `name`'s temBoard hash by an Argon2id one, after [`Users::verify`] answered
    /// [`VerifyOutcome::OkNeedsUpgrade`]. The file is read again and changed only if it still
    /// holds a temBoard hash that `password` matches, so a password set meanwhile is never
    /// overwritten with the old one. True when the file was rewritten.
    pub fn upgrade(path: &Path, name: &str, password: &str) -> anyhow::Result<bool> {
        validate_username(name)?;
        validate_password(password)?;
        // Hash before taking the lock: it is the slow part.
        let line = format!("{name}:{}", hash_password(password)?);
        let mut upgraded = false;
        rewrite(path, |lines| {
            let current = lines
                .iter()
                .filter_map(|l| parse_line(l))
                .find(|(n, _)| *n == name)
                .and_then(|(_, hash)| StoredHash::parse(hash));
            upgraded = matches!(
                current,
                Some(StoredHash::Temboard(digest)) if temboard_hash::verify(&digest, name, password)
            );
            if upgraded {
                replace_user(lines, name, Some(line));
            }
            Ok(upgraded)
        })?;
        Ok(upgraded)
    }
}

fn argon2_matches(phc: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

fn burn_one_verification(password: &str) {
    std::hint::black_box(argon2_matches(DUMMY_HASH, password));
}

/// `(name, hash)` of a user line; None for blank and comment lines. Lines are trimmed, as
/// temBoard did.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    match line.split_once(':') {
        Some((name, hash)) => Some((name.trim(), hash.trim())),
        None => Some((line, "")),
    }
}

/// Puts `replacement` where `name`'s first line was (or appends it), dropping any later lines
/// for the same name; removes them all when `replacement` is None. True when a line was found.
fn replace_user(lines: &mut Vec<String>, name: &str, replacement: Option<String>) -> bool {
    let mut replacement = replacement;
    let mut found = false;
    let mut kept = Vec::with_capacity(lines.len() + 1);
    for line in lines.drain(..) {
        if parse_line(&line).is_some_and(|(n, _)| n == name) {
            found = true;
            if let Some(new) = replacement.take() {
                kept.push(new);
            }
        } else {
            kept.push(line);
        }
    }
    kept.extend(replacement);
    *lines = kept;
    found
}

/// Reads the users file, lets `edit` change its lines, and, when `edit` says it changed them,
/// replaces the file atomically: a crash leaves either the old file or the new one, never half
/// of one, and the file stays 0600 with its owner (so `dbagent user add` run as root does not
/// hand the agent's file to root).
fn rewrite(
    path: &Path,
    edit: impl FnOnce(&mut Vec<String>) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let _guard = REWRITE.lock().unwrap_or_else(PoisonError::into_inner);
    let target = resolve_link(path)
        .with_context(|| format!("cannot resolve users file {}", path.display()))?;
    let (text, owner) = match fs::read_to_string(&target) {
        Ok(text) => {
            let meta = fs::metadata(&target)
                .with_context(|| format!("cannot inspect users file {}", target.display()))?;
            (text, Some((meta.uid(), meta.gid())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read users file {}", target.display()));
        }
    };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if !edit(&mut lines)? {
        return Ok(());
    }
    let mut contents = lines.join("\n");
    if !contents.is_empty() {
        contents.push('\n');
    }
    write_atomically(&target, contents.as_bytes(), owner)
        .with_context(|| format!("cannot write users file {}", target.display()))
}

/// Where to write so that a symbolic link (say, into a configuration-management checkout) stays
/// a link: a rename over the link itself would replace it with a plain file.
fn resolve_link(path: &Path) -> std::io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Ok(real) => Ok(real),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::read_link(path) {
            // A link to a file not created yet.
            Ok(dest) => Ok(path
                .parent()
                .map_or_else(|| dest.clone(), |dir| dir.join(&dest))),
            Err(_) => Ok(path.to_owned()),
        },
        Err(e) => Err(e),
    }
}

fn write_atomically(
    target: &Path,
    contents: &[u8],
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".to_owned());
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).context("cannot read random bytes")?;
    let temp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
    let result = (|| -> anyhow::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        // The mode given at creation is filtered by the umask; make sure of the exact bits.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata()?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                    .with_context(|| format!("cannot give the new file owner {uid}:{gid}"))?;
            }
        }
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, target)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    // Make the rename itself durable; not every filesystem supports syncing a directory, and
    // the new file is already complete either way.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the password for `dbagent user add`: asked twice without echo on a terminal, else one
/// line from standard input (for scripts: `echo "$PW" | dbagent user add alice`).
pub fn read_password_from_stdin() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Retype password: ").context("cannot read the password")?;
        if first != again {
            bail!("the passwords do not match");
        }
        first
    } else {
        read_password_line(&mut stdin.lock())?
    };
    validate_password(&password).map_err(|_| {
        anyhow::anyhow!("the password must be 1 to {MAX_PASSWORD_BYTES} bytes long")
    })?;
    Ok(password)
}

/// One line, without its line ending; spaces are kept since they may be part of the password.
fn read_password_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    // A line longer than any acceptable password (plus "\r\n") is refused, not buffered.
    input
        .take(MAX_PASSWORD_BYTES as u64 + 3)
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn users_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("users");
        fs::write(&path, text).unwrap();
        path
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_dummy_hash_is_a_default_parameter_argon2id_hash() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let fresh = hash_password("x").unwrap();
        let fresh = PasswordHash::new(&fresh).unwrap();
        assert_eq!(parsed.algorithm, fresh.algorithm);
        assert_eq!(parsed.version, fresh.version);
        assert_eq!(parsed.params, fresh.params);
        assert_eq!(parsed.hash.map(|h| h.len()), fresh.hash.map(|h| h.len()));
    }

    #[test]
    fn usernames_and_passwords_are_validated() {
        for ok in ["a", "alice", "Bob_1.x@example-org", &"x".repeat(64)] {
            assert_eq!(validate_username(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a:b", "a b", "é", "a/b", &"x".repeat(65)] {
            assert_eq!(validate_username(bad), Err(Malformed::Username), "{bad}");
        }
        assert_eq!(validate_password("p"), Ok(()));
        assert_eq!(validate_password(&"p".repeat(1024)), Ok(()));
        assert_eq!(validate_password(""), Err(Malformed::Password));
        assert_eq!(
            validate_password(&"p".repeat(1025)),
            Err(Malformed::Password)
        );
        assert_eq!(
            Malformed::Username.to_string(),
            "Parameter 'username' is malformed."
        );
    }

    #[test]
    fn argon2id_users_log_in_with_their_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        Users::set_password(&path, "alice", "correct horse").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("alice:$argon2id$v=19$m=19456,t=2,p=1$"),
            "{text}"
        );
        assert!(!text.contains("correct horse"));
        assert_eq!(mode(&path), 0o600);

        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("alice", "correct horse"), VerifyOutcome::Ok);
        assert_eq!(users.verify("alice", "wrong"), VerifyOutcome::Invalid);
        assert_eq!(
            users.verify("nobody", "correct horse"),
            VerifyOutcome::Invalid
        );
        assert_eq!(
            users.verify("bad name", "correct horse"),
            VerifyOutcome::Invalid
        );
        assert_eq!(users.verify("alice", ""), VerifyOutcome::Invalid);
    }

    #[test]
    fn temboard_users_are_accepted_then_upgraded_on_login() {
        let dir = tempfile::tempdir().unwrap();
        // Written as temboard-agent-adduser would: "{}:{}\n".format(username, hash_).
        let legacy = format!(
            "alice:{}\nbob:{}\n",
            temboard_hash::encode("alice", "alice-pw"),
            temboard_hash::encode("bob", "bob-pw")
        );
        let path = users_file(&dir, &legacy);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users.verify("alice", "alice-pw"),
            VerifyOutcome::OkNeedsUpgrade
        );
        assert_eq!(users.verify("alice", "bob-pw"), VerifyOutcome::Invalid);
        assert_eq!(users.verify("bob", "alice-pw"), VerifyOutcome::Invalid);

        assert!(
            !Users::upgrade(&path, "alice", "wrong").unwrap(),
            "never with a wrong password"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), legacy);

        assert!(Users::upgrade(&path, "alice", "alice-pw").unwrap());
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("alice:$argon2id$"), "{text}");
        assert_eq!(
            lines[1],
            format!("bob:{}", temboard_hash::encode("bob", "bob-pw"))
        );
        assert_eq!(mode(&path), 0o600);

        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("alice", "alice-pw"), VerifyOutcome::Ok);
        assert_eq!(users.verify("bob", "bob-pw"), VerifyOutcome::OkNeedsUpgrade);
        assert!(
            !Users::upgrade(&path, "alice", "alice-pw").unwrap(),
            "already Argon2id"
        );
    }

    #[test]
    fn upgrade_does_not_undo_a_password_changed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = users_file(
            &dir,
            &format!("alice:{}\n", temboard_hash::encode("alice", "old")),
        );
        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("alice", "old"), VerifyOutcome::OkNeedsUpgrade);
        Users::set_password(&path, "alice", "new").unwrap();
        assert!(!Users::upgrade(&path, "alice", "old").unwrap());
        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("alice", "new"), VerifyOutcome::Ok);
        assert_eq!(users.verify("alice", "old"), VerifyOutcome::Invalid);
    }

    #[test]
    fn set_password_replaces_in_place_and_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let bob = format!("bob:{}", temboard_hash::encode("bob", "b"));
        let path = users_file(
            &dir,
            &format!(
                "# operators\nalice:{}\n\n{bob}\n",
                temboard_hash::encode("alice", "a")
            ),
        );
        Users::set_password(&path, "alice", "new-a").unwrap();
        Users::set_password(&path, "carol", "c").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# operators");
        assert!(lines[1].starts_with("alice:$argon2id$"));
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], bob);
        assert!(lines[4].starts_with("carol:$argon2id$"));
        assert_eq!(lines.len(), 5);

        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("alice", "new-a"), VerifyOutcome::Ok);
        assert_eq!(users.verify("carol", "c"), VerifyOutcome::Ok);

        assert!(Users::set_password(&path, "bad:name", "x").is_err());
        assert!(Users::set_password(&path, "dave", "").is_err());
    }

    #[test]
    fn delete_removes_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        Users::set_password(&path, "alice", "a").unwrap();
        Users::set_password(&path, "bob", "b").unwrap();
        assert!(Users::delete(&path, "alice").unwrap());
        assert!(!Users::delete(&path, "alice").unwrap());
        let users = Users::load(&path).unwrap();
        assert!(!users.contains("alice"));
        assert!(users.contains("bob"));
        assert_eq!(users.verify("alice", "a"), VerifyOutcome::Invalid);
    }

    #[test]
    fn a_missing_file_is_no_users_and_bad_lines_are_errors_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::load(&dir.path().join("absent")).unwrap();
        assert!(users.is_empty());
        assert_eq!(users.verify("alice", "x"), VerifyOutcome::Invalid);

        let path = users_file(&dir, "# ok\nalice:not-a-hash\n");
        let e = format!("{:#}", Users::load(&path).unwrap_err());
        assert!(e.contains(&format!("{}:2", path.display())), "{e}");

        let path = users_file(
            &dir,
            "al ice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA\n",
        );
        let e = format!("{:#}", Users::load(&path).unwrap_err());
        assert!(e.contains(&format!("{}:1", path.display())), "{e}");

        let path = users_file(&dir, "alice\n");
        assert!(Users::load(&path).is_err());
    }

    #[test]
    fn the_first_line_for_a_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = users_file(
            &dir,
            &format!(
                "alice:{}\nalice:{}\n",
                temboard_hash::encode("alice", "first"),
                temboard_hash::encode("alice", "second")
            ),
        );
        let users = Users::load(&path).unwrap();
        assert_eq!(
            users.verify("alice", "first"),
            VerifyOutcome::OkNeedsUpgrade
        );
        assert_eq!(users.verify("alice", "second"), VerifyOutcome::Invalid);
        // Replacing a user leaves one line for it.
        Users::set_password(&path, "alice", "third").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn rewrites_follow_a_symbolic_link_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real-users");
        let link = dir.path().join("users");
        symlink(&real, &link).unwrap();
        // First through a dangling link, then through a link to an existing file.
        Users::set_password(&link, "alice", "a").unwrap();
        Users::set_password(&link, "bob", "b").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let users = Users::load(&real).unwrap();
        assert_eq!(users.verify("alice", "a"), VerifyOutcome::Ok);
        assert_eq!(users.verify("bob", "b"), VerifyOutcome::Ok);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_password_line_keeps_its_spaces_but_not_its_line_ending() {
        let read = |s: &str| read_password_line(&mut s.as_bytes()).unwrap();
        assert_eq!(read(" pass word \n"), " pass word ");
        assert_eq!(read("pw\r\nsecond line\n"), "pw");
        assert_eq!(read("no newline"), "no newline");
        assert_eq!(read(""), "");
        let long = read(&"x".repeat(5000));
        assert!(validate_password(&long).is_err());
    }

    #[test]
    fn debug_shows_names_not_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = users_file(
            &dir,
            &format!("alice:{}\n", temboard_hash::encode("alice", "a")),
        );
        let shown = format!("{:?}", Users::load(&path).unwrap());
        assert!(shown.contains("alice"));
        assert!(
            !shown.contains(&temboard_hash::encode("alice", "a")),
            "{shown}"
        );
    }
}
