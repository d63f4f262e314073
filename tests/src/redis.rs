//! A throwaway Redis server on 127.0.0.1 at a free port, its working
//! directory in a temporary directory, nothing saved on its own
//! (`--save '' --appendonly no`). It never touches the machine's own Redis.
//!
//! [`Redis::command`] speaks RESP over TCP itself rather than through
//! `redis-cli`, whose output cannot tell an error or a nil from a string.

use crate::free_port;
use crate::process::{ServerProcess, read_log, server_tempdir, start_with_retries};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// A reply, as RESP2 types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisReply {
    /// `+OK`, `+PONG`, …
    Status(String),
    /// `-ERR …`, `-NOAUTH …`: the server's own error text.
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Array(Vec<RedisReply>),
    /// A nil bulk string or nil array.
    Nil,
}

impl RedisReply {
    /// The reply as text: a status, a bulk string (lossy UTF-8) or an
    /// integer; `None` for anything else.
    pub fn as_text(&self) -> Option<String> {
        match self {
            RedisReply::Status(s) => Some(s.clone()),
            RedisReply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            RedisReply::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

pub struct Redis {
    dir: TempDir,
    port: u16,
    password: Option<String>,
    process: Option<ServerProcess>,
}

impl Redis {
    /// A server without a password.
    pub fn start() -> Redis {
        Self::start_with(None)
    }

    /// A server that needs `AUTH password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Redis {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Redis {
        start_with_retries("a Redis server", || {
            let mut server = Redis {
                dir: server_tempdir("redis", None)?,
                port: free_port(),
                password: password.map(str::to_string),
                process: None,
            };
            server.spawn()?;
            Ok(server)
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--logfile", ""])
            .current_dir(self.dir.path());
        if let Some(password) = &self.password {
            cmd.args(["--requirepass", password]);
        }
        let mut process = ServerProcess::spawn(cmd, &self.log_path())?;
        // Ours, not whoever else might hold the port: INFO names the pid.
        let pid = format!("process_id:{}\r", process.pid().unwrap_or(0));
        process.wait_ready("redis-server", || {
            self.raw_command(&["INFO", "server"], true)
                .ok()
                .and_then(|reply| reply.as_text())
                .is_some_and(|info| info.contains(&pid))
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the server with `SHUTDOWN SAVE`, so that its keys are in
    /// `dump.rdb` for [`Redis::restart`] (a plain Redis started with
    /// `--save ''` would lose them). Panics if it does not stop.
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        // The server closes the connection instead of answering.
        let _ = self.raw_command(&["SHUTDOWN", "SAVE"], true);
        if !process.wait_exit(crate::process::STOP_TIMEOUT) {
            process
                .terminate("redis-server")
                .unwrap_or_else(|e| panic!("cannot stop Redis: {e}"));
        }
    }

    /// Kills the server (SIGKILL): its keys are lost, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port and directory (loading
    /// `dump.rdb` if [`Redis::stop`] saved one), stopping it first if it is
    /// running.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("cannot restart Redis on port {}: {e}", self.port));
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `redis://127.0.0.1:PORT` or `redis://:PASSWORD@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The server's working directory (where `dump.rdb` goes).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// Sends one command (authenticating first when the server has a
    /// password) and returns its reply; an error reply is returned as
    /// [`RedisReply::Error`], not a panic. Panics when the server cannot be
    /// reached.
    pub fn command(&self, args: &[&str]) -> RedisReply {
        self.raw_command(args, true)
            .unwrap_or_else(|e| panic!("Redis command {args:?} on port {}: {e}", self.port))
    }

    fn raw_command(&self, args: &[&str], auth: bool) -> Result<RedisReply, String> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut writer = stream;
        if let (true, Some(password)) = (auth, &self.password) {
            writer
                .write_all(&encode(&["AUTH", password]))
                .map_err(|e| e.to_string())?;
            if let RedisReply::Error(e) = read_reply(&mut reader)? {
                return Err(format!("AUTH refused: {e}"));
            }
        }
        writer.write_all(&encode(args)).map_err(|e| e.to_string())?;
        read_reply(&mut reader)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_reply(reader: &mut impl BufRead) -> Result<RedisReply, String> {
    let mut line = String::new();
    let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the server closed the connection".to_string());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(1.min(line.len()));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("malformed reply line {line:?}"))
    };
    Ok(match kind {
        "+" => RedisReply::Status(rest.to_string()),
        "-" => RedisReply::Error(rest.to_string()),
        ":" => RedisReply::Integer(number()?),
        "$" => {
            let len = number()?;
            if len < 0 {
                return Ok(RedisReply::Nil);
            }
            let mut data = vec![0; len as usize + 2];
            reader.read_exact(&mut data).map_err(|e| e.to_string())?;
            data.truncate(len as usize);
            RedisReply::Bulk(data)
        }
        "*" => {
            let len = number()?;
            if len < 0 {
                return Ok(RedisReply::Nil);
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(read_reply(reader)?);
            }
            RedisReply::Array(items)
        }
        _ => return Err(format!("unexpected reply line {line:?}")),
    })
}
