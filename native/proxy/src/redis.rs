//! A small Redis client for the conversation store: `GET` and `SET … PX` over RESP2, on a few
//! pooled connections. Keys are `microloop:resp:{id}`; values expire with the store's age limit,
//! so Redis bounds the map (with its own `maxmemory` policy for size).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const KEY_PREFIX: &str = "microloop:resp:";
const POOL: usize = 16;

pub struct Redis {
    addr: String,
    db: Option<u32>,
    password: Option<(Option<String>, String)>,
    ttl: Duration,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
    timeout: Duration,
}

impl Redis {
    /// `redis://[[user]:password@]host[:port][/db]`.
    pub fn new(url: &str, ttl: Duration) -> Result<Redis, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| format!("not a redis:// URL: `{url}`"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, d)) if !d.is_empty() => (h, Some(d.parse::<u32>().map_err(|_| format!("--store: `{d}` is not a database number"))?)),
            Some((h, _)) => (h, None),
            None => (rest, None),
        };
        if hostport.is_empty() {
            return Err(format!("--store: no host in `{url}`"));
        }
        let addr = if hostport.contains(':') { hostport.to_owned() } else { format!("{hostport}:6379") };
        let password = auth.map(|a| match a.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), p.to_owned()),
            None => (None, a.to_owned()),
        });
        Ok(Redis { addr, db, password, ttl, idle: Mutex::new(Vec::new()), timeout: Duration::from_secs(5) })
    }

    pub async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        let key = format!("{KEY_PREFIX}{id}");
        self.call(&[b"GET", key.as_bytes()]).await
    }

    pub async fn put(&self, id: &str, value: &[u8]) -> Result<(), String> {
        let key = format!("{KEY_PREFIX}{id}");
        let ms = self.ttl.as_millis().max(1).to_string();
        self.call(&[b"SET", key.as_bytes(), value, b"PX", ms.as_bytes()]).await.map(|_| ())
    }

    async fn call(&self, args: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
        let fut = async {
            let mut conn = match self.idle.lock().await.pop() {
                Some(c) => c,
                None => self.connect().await?,
            };
            let reply = command(&mut conn, args).await?;
            let mut idle = self.idle.lock().await;
            if idle.len() < POOL {
                idle.push(conn);
            }
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("redis at {} did not answer in time", self.addr))?
            .map_err(|e: String| format!("redis at {}: {e}", self.addr))
    }

    async fn connect(&self) -> Result<BufReader<TcpStream>, String> {
        let s = TcpStream::connect(&self.addr).await.map_err(|e| format!("cannot connect ({e})"))?;
        let _ = s.set_nodelay(true);
        let mut c = BufReader::new(s);
        if let Some((user, pass)) = &self.password {
            match user {
                Some(u) => command(&mut c, &[b"AUTH", u.as_bytes(), pass.as_bytes()]).await?,
                None => command(&mut c, &[b"AUTH", pass.as_bytes()]).await?,
            };
        }
        if let Some(db) = self.db {
            command(&mut c, &[b"SELECT", db.to_string().as_bytes()]).await?;
        }
        Ok(c)
    }
}

/// Sends one command and reads its reply: a bulk string, nil, or a simple status.
async fn command(c: &mut BufReader<TcpStream>, args: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    c.get_mut().write_all(&out).await.map_err(|e| e.to_string())?;
    let mut line = String::new();
    if c.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') | Some(b':') => Ok(Some(line.as_bytes()[1..].to_vec())),
        Some(b'-') => Err(line[1..].to_owned()),
        Some(b'$') => {
            let n: i64 = line[1..].parse().map_err(|_| format!("bad reply `{line}`"))?;
            if n < 0 {
                return Ok(None);
            }
            let mut buf = vec![0; n as usize + 2];
            c.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            buf.truncate(n as usize);
            Ok(Some(buf))
        }
        _ => Err(format!("unexpected reply `{line}`")),
    }
}
