//! The HTTP side of `serve --metrics`: one connection at a time, each
//! given a few seconds, then closed.
//!
//! Why not a general HTTP server: the crate used before (`tiny_http`)
//! started a thread for every open connection and kept it as long as the
//! client stayed silent, so anyone who could reach the port could make
//! the server start thousands of threads and hold as many file
//! descriptors (the ones edits need), by opening connections and sending
//! nothing. Here one thread takes one connection, reads at most
//! [`MAX_REQUEST`] bytes for at most [`PATIENCE`], answers and closes it;
//! the connections waiting behind it wait in the kernel's listen queue,
//! which costs this process nothing. A silent client can delay scrapes by
//! [`PATIENCE`] per connection it holds, and never take more than that.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one connection may take to send its request, and to take
/// the answer.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// The most bytes of a request read (request line and headers); a
/// scrape's request is a few hundred.
pub const MAX_REQUEST: usize = 8 * 1024;

/// An answer: status code, content type, body.
pub struct Answer {
    /// 200, 404, ...
    pub status: u16,
    /// The Content-Type header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// A listening endpoint; stopped when dropped.
pub struct Endpoint {
    stop: Arc<AtomicBool>,
    /// Where to connect to wake the accepting thread when stopping.
    wake: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Listens on `addr`; `answer(method, path)` answers each request
    /// (`path` without its query string).
    ///
    /// # Errors
    /// The address cannot be bound, or the thread cannot start.
    pub fn start(
        addr: SocketAddr,
        answer: impl Fn(&str, &str) -> Answer + Send + 'static,
    ) -> io::Result<Endpoint> {
        let listener = TcpListener::bind(addr)?;
        let wake = reachable(listener.local_addr()?);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    match stream {
                        Ok(stream) => serve_one(stream, &answer),
                        Err(e) => {
                            // Out of descriptors, or a connection reset
                            // before it was taken: wait a little rather
                            // than spin, and go on.
                            tracing::debug!(error = %e, "metrics connection not accepted");
                            thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        Ok(Endpoint {
            stop,
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread waits in accept (or serves a connection for at most
        // twice PATIENCE): a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&self.wake, PATIENCE);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The address to connect to for a listener bound to `bound` (an
/// unspecified address is reached on loopback).
fn reachable(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// Reads one request (within PATIENCE and MAX_REQUEST), answers it and
/// closes the connection. A request that does not arrive whole in time
/// gets no answer.
fn serve_one(mut stream: TcpStream, answer: &impl Fn(&str, &str) -> Answer) {
    let deadline = Instant::now() + PATIENCE;
    let Some(head) = read_head(&mut stream, deadline) else {
        return;
    };
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let reply = answer(method, path);
    let reason = match reply.status {
        200 => "OK",
        404 => "Not Found",
        _ => "",
    };
    let response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = stream.set_write_timeout(Some(PATIENCE));
    if let Err(e) = stream.write_all(response.as_bytes()) {
        tracing::debug!(error = %e, "metrics scrape not answered");
    }
}

/// The request line and headers (up to the blank line), or None when
/// they do not come whole within `deadline`, or are longer than
/// MAX_REQUEST bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let end = end + 4;
            return (end <= MAX_REQUEST)
                .then(|| String::from_utf8_lossy(&head[..end]).into_owned());
        }
        if head.len() >= MAX_REQUEST {
            return None;
        }
        // Zero when the time is up, which the socket refuses as a timeout.
        let left = deadline.saturating_duration_since(Instant::now());
        stream.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::start("127.0.0.1:0".parse().unwrap(), |method, path| Answer {
            status: if method == "GET" && path == "/x" {
                200
            } else {
                404
            },
            content_type: "text/plain",
            body: format!("{method} {path}"),
        })
        .unwrap()
    }

    /// Sends `request` and reads the answer until the server closes. A
    /// write error is not one: a server refusing an oversized request may
    /// close before it is all written.
    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(request);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn answers_the_path_without_its_query_and_closes() {
        let e = endpoint();
        let out = get(e.wake, b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Length: 6\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nGET /x"), "{out}");
        let out = get(e.wake, b"POST /x HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
    }

    #[test]
    fn a_request_without_its_end_or_too_long_gets_no_answer() {
        let e = endpoint();
        // Closed before the blank line.
        let mut s = TcpStream::connect(e.wake).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert_eq!(out, "");
        // Longer than MAX_REQUEST, with or without its blank line.
        let mut long = b"GET /x HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_REQUEST));
        // The server may give up and close before all is written: the
        // writes' and the shutdown's errors are expected then.
        let mut s = TcpStream::connect(e.wake).unwrap();
        let _ = s.write_all(&long);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert_eq!(out, "");
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(get(e.wake, &long), "");
        // Just under the limit is answered.
        let mut near = b"GET /x HTTP/1.1\r\nX: ".to_vec();
        near.extend(std::iter::repeat_n(b'a', MAX_REQUEST - near.len() - 4));
        near.extend_from_slice(b"\r\n\r\n");
        assert_eq!(near.len(), MAX_REQUEST);
        assert!(get(e.wake, &near).contains(" 200 OK"));
        // One byte over, blank line included, is not, also when the first
        // bytes arrive alone (so a read ends past the limit).
        let over = [&near[..20], b"a", &near[20..]].concat();
        assert_eq!(get(e.wake, &over), "");
        let mut s = TcpStream::connect(e.wake).unwrap();
        s.write_all(&over[..100]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let _ = s.write_all(&over[100..]);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert_eq!(out, "");
        // The endpoint still answers.
        assert!(get(e.wake, b"GET /x HTTP/1.0\r\n\r\n").contains(" 200 OK"));
    }

    #[test]
    fn a_silent_connection_is_dropped_after_patience_and_the_next_is_answered() {
        let e = endpoint();
        let _silent = TcpStream::connect(e.wake).unwrap();
        let out = get(e.wake, b"GET /x HTTP/1.1\r\n\r\n");
        assert!(out.contains(" 200 OK"), "{out}");
    }

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:9".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:9".parse().unwrap());
        let any6: SocketAddr = "[::]:9".parse().unwrap();
        assert_eq!(reachable(any6), "[::1]:9".parse().unwrap());
        for some in ["10.0.0.1:9", "[2001:db8::1]:9"] {
            let some: SocketAddr = some.parse().unwrap();
            assert_eq!(reachable(some), some);
        }
    }
}
