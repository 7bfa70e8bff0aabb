use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Method};
use crate::util::refined_tcp_stream::Deadline;
use crate::util::RefinedTcpStream;
use crate::util::{
    SequentialReader, SequentialReaderBuilder, SequentialWriter, SequentialWriterBuilder,
};
use crate::{ConnectionLimits, Request};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // nowd patch: the answer owed to the request last read, written by this
    // connection's thread as the application hands it over
    pending: Option<SequentialWriter<BufWriter<RefinedTcpStream>>>,
    // nowd patch: where answers come back, one at a time, each ended by an
    // empty chunk (one channel for the connection's life: none per request)
    answers: (SyncSender<Vec<u8>>, Receiver<Vec<u8>>),
    // the end of the pending answer has come
    answer_done: bool,
    // nowd patch: the buffer of the last answer, for the next (see REPLY_KEEP)
    spare: Vec<u8>,

    // nowd patch: the deadline of the read in progress, and what sets it
    deadline: Deadline,
    idle_timeout: Option<Duration>,
    head_timeout: Option<Duration>,
    // past this instant nothing more is read (ConnectionLimits::max_age)
    end_of_life: Option<Instant>,
    // requests read from this instant on are the last (one idle timeout before the end)
    last_call: Option<Instant>,
    // a byte of the request being read has arrived
    request_started: bool,
}

/// nowd patch: what the application writes as its answer to a request. The
/// bytes go to the connection's own thread, which writes them to the socket,
/// so an application thread never waits on a client that does not read; and
/// that thread reads the next request only once this answer is written, so a
/// connection holds at most one request and one answer, however much a client
/// pipelines.
struct ReplyWriter {
    buf: Vec<u8>,
    to: SyncSender<Vec<u8>>,
    // the socket, written at once from the application's thread while it
    // takes every byte (the common case: an answer to a client that reads);
    // the first byte it does not take, and all after, go to the connection's
    // thread, which may wait
    socket: Option<Arc<Mutex<BufWriter<RefinedTcpStream>>>>,
}

/// Bytes an answer may gather before they go to the connection's thread.
const REPLY_CHUNK: usize = 8 * 1024;
/// nowd patch: an answer's buffer comes back with its end marker and is
/// used again for the next answer on the connection, if it holds at most
/// this much: no allocation per answer, and at most this much kept.
const REPLY_KEEP: usize = 1024;

impl ReplyWriter {
    fn send(&mut self) -> IoResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(socket) = &self.socket {
            let mut socket = socket.lock().unwrap_or_else(|e| e.into_inner());
            // empty: the connection's thread flushes after each write
            let n = socket.get_mut().write_now(&self.buf).unwrap_or(0);
            drop(socket);
            self.buf.drain(..n);
            if self.buf.is_empty() {
                return Ok(());
            }
            self.socket = None;
        }
        self.to
            .send(std::mem::take(&mut self.buf))
            .map_err(|_| IoError::new(ErrorKind::BrokenPipe, "the connection has ended"))
    }
}

impl Write for ReplyWriter {
    fn write(&mut self, data: &[u8]) -> IoResult<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= REPLY_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> IoResult<()> {
        self.send()
    }
}

impl Drop for ReplyWriter {
    fn drop(&mut self) {
        let _ = self.send();
        // the end of this answer: empty, and the buffer back for the next
        let mut end = std::mem::take(&mut self.buf);
        end.clear();
        let _ = self.to.send(end);
    }
}

/// Longest request line accepted; a longer one is answered 414 (nowd patch).
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Most bytes of header lines accepted, and most header lines; more is
/// answered 431 (nowd patch). Without these bounds a client that never ends a
/// line, or never ends the header, makes the server buffer without limit.
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;
// nowd patch: how often a connection waiting for its next request looks at
// the answer it owes, until the application has handed all of it over
const ANSWER_POLL: Duration = Duration::from_millis(50);
// nowd patch: the most a closing connection reads and drops (see `linger`)
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    /// the request line is longer than `MAX_REQUEST_LINE`
    RequestLineTooLong,
    /// the header lines are larger than `MAX_HEADER_BYTES` or more than `MAX_HEADERS`
    HeaderTooLarge(HTTPVersion),
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    // nowd patch: no byte of a request came before the idle deadline
    Idle,
    // nowd patch: a transfer coding other than chunked
    NotImplemented(HTTPVersion),
    // nowd patch: HTTP/2 and later, and HTTP/0.9
    VersionNotSupported,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: &ConnectionLimits,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let deadline: Deadline = Arc::new(Mutex::new((None, None)));
        read_socket.set_deadline(deadline.clone());

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            pending: None,
            answers: sync_channel(2),
            answer_done: false,
            spare: Vec::new(),
            deadline,
            idle_timeout: limits.idle_timeout,
            head_timeout: limits.head_timeout,
            end_of_life: limits.max_age.map(|age| Instant::now() + age),
            last_call: limits.max_age.map(|age| {
                Instant::now() + age.saturating_sub(limits.idle_timeout.unwrap_or_default())
            }),
            request_started: false,
        }
    }

    /// nowd patch: waits for the next request's first bytes (or the end of
    /// input) while writing what the application hands over of the answer
    /// owed; false if none came within idle_timeout.
    fn await_request(
        &mut self,
        writer: &mut SequentialWriter<BufWriter<RefinedTcpStream>>,
    ) -> bool {
        use std::sync::mpsc::TryRecvError;
        let idle_by = match (
            self.idle_timeout.map(|t| Instant::now() + t),
            self.end_of_life,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut done = false;
        let ready = loop {
            while !done {
                match self.answers.1.try_recv() {
                    Ok(chunk) if chunk.is_empty() => {
                        self.keep(chunk);
                        done = true;
                    }
                    Ok(chunk) => {
                        if writer
                            .write_all(&chunk)
                            .and_then(|()| writer.flush())
                            .is_err()
                        {
                            break; // the write failed: the rest of the answer ends it
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => done = true, // never: we hold a sender
                }
            }
            // Until the answer is done, look at it again every ANSWER_POLL.
            let each = if done {
                self.idle_timeout
            } else {
                Some(ANSWER_POLL)
            };
            *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = (each, idle_by);
            match self.next_header_source.fill_buf() {
                Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                    if idle_by.is_some_and(|by| Instant::now() >= by) {
                        break false;
                    }
                }
                _ => break true, // input, the end of it, or an error for read() to see
            }
        };
        self.answer_done = done;
        ready
    }

    /// nowd patch: keeps an answer's emptied buffer for the next answer.
    fn keep(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= REPLY_KEEP {
            self.spare = buf;
        }
    }

    /// nowd patch: after an error answer, with the client's bytes still
    /// unread: closing now would make the kernel send a reset, and the client
    /// would lose the answer. So the answer is flushed, the sending side shut,
    /// and what the client still sends read and dropped, until it closes,
    /// for at most LINGER_TIME and LINGER_BYTES.
    fn linger(&mut self) {
        {
            let mut writer = self.sink.lock();
            let _ = writer.flush();
            writer.get_mut().shutdown_write();
        }
        self.set_deadline(Some(LINGER_TIME));
        let mut left = LINGER_BYTES;
        let mut buf = [0u8; 1024];
        while left > 0 {
            match self.next_header_source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }

    /// nowd patch: each read may wait idle_timeout, and all must end within
    /// `total` from now (if given) and never past the connection's end of life.
    fn set_deadline(&self, total: Option<Duration>) {
        let by = match (total.map(|t| Instant::now() + t), self.end_of_life) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = (self.idle_timeout, by);
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    /// `Ok(None)` when the line would be longer than `limit` bytes (nowd patch).
    ///
    /// nowd patch: the line is taken from the read buffer a run of bytes at
    /// a time, up to its LF, not through `Read::bytes`, which cost a call
    /// into the buffered reader (~130 instructions) for each byte.
    fn read_next_line(&mut self, limit: usize) -> IoResult<Option<AsciiString>> {
        let mut buf = Vec::new();

        loop {
            // (bytes taken from the buffer, whether the line is over or too long)
            let (taken, end) = {
                let available = match self.next_header_source.fill_buf() {
                    Ok(available) => available,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if available.is_empty() {
                    return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF"));
                }
                let lf = available.iter().position(|&b| b == b'\n');
                let run = &available[..lf.unwrap_or(available.len())];
                // At most limit + 1 bytes before the LF (the last may be a CR).
                if buf.len() + run.len() > limit + 1 {
                    (limit + 2 - buf.len(), None)
                } else {
                    buf.extend_from_slice(run);
                    (run.len() + usize::from(lf.is_some()), Some(lf.is_some()))
                }
            };
            self.next_header_source.consume(taken);
            if !self.request_started {
                // nowd patch: the head must now arrive within head_timeout
                self.request_started = true;
                self.set_deadline(self.head_timeout);
            }
            match end {
                None => return Ok(None),
                Some(false) => continue,
                Some(true) => {}
            }

            // nowd patch: a line ends at LF, with or without CR before it (RFC
            // 9112 2.2 lets a server accept a bare LF; waiting for a CR hung).
            // A CR anywhere else, NUL or another control byte is refused (2.2,
            // RFC 9110 5.5), not passed on as part of a value.
            if buf.last() == Some(&b'\r') {
                buf.pop(); // removing the '\r'
            }
            if buf.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
                return Err(IoError::new(
                    ErrorKind::InvalidData,
                    "control character in a line",
                ));
            }
            return AsciiString::from_ascii(buf)
                .map(Some)
                .map_err(|_| IoError::new(ErrorKind::InvalidData, "Header is not in ASCII"));
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // nowd patch: wait at most idle_timeout for the request's first byte
        self.request_started = false;
        self.set_deadline(None);
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self
                    .read_next_line(MAX_REQUEST_LINE)
                    .map_err(|e| match e.kind() {
                        ErrorKind::TimedOut if !self.request_started => ReadError::Idle,
                        ErrorKind::InvalidData => ReadError::WrongRequestLine,
                        _ => ReadError::ReadIoError(e),
                    })?
                    .ok_or(ReadError::RequestLineTooLong)?;

                // nowd patch: the three fields, one space between them,
                // nothing around them, no tab (RFC 9112 3). Trimming the line
                // or splitting it on other whitespace is where parsers part
                // ways, and a message two parsers read differently is how a
                // request is smuggled (RFC 9112 3, 11.2).
                let line = line.as_str();
                if line.starts_with(' ')
                    || line.ends_with(' ')
                    || line.contains("  ")
                    || line.contains('\t')
                {
                    return Err(ReadError::WrongRequestLine);
                }
                let (method, path, version) = parse_request_line(line)?;
                // nowd patch: answered before any header is read: what follows
                // (an HTTP/2 preface) is not HTTP/1. `HTTP/0.9` too: answers
                // repeat the request's version, and `HTTP/0.9 400` is no
                // status line a client can read (0.9 has none)
                if version > HTTPVersion(1, 1) || version < HTTPVersion(1, 0) {
                    return Err(ReadError::VersionNotSupported);
                }
                (method, path, version)
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                let mut budget = MAX_HEADER_BYTES;
                loop {
                    let line = self
                        .read_next_line(budget)
                        .map_err(|e| match e.kind() {
                            ErrorKind::InvalidData => ReadError::WrongHeader(version.clone()),
                            _ => ReadError::ReadIoError(e),
                        })?
                        .ok_or(ReadError::HeaderTooLarge(version.clone()))?;

                    if line.is_empty() {
                        break;
                    };
                    // nowd patch: obs-fold (a line that continues the one
                    // before) is refused, as RFC 9112 5.2 allows
                    if line.as_bytes()[0] == b' ' || line.as_bytes()[0] == b'\t' {
                        return Err(ReadError::WrongHeader(version));
                    }
                    budget = budget.saturating_sub(line.len() + 2);
                    if headers.len() == MAX_HEADERS {
                        return Err(ReadError::HeaderTooLarge(version));
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // nowd patch: the framing RFC 9112 requires of a server
        check_framing(&version, &headers)?;
        check_transfer_encoding(&version, &headers)?;

        // nowd patch: the application's answer comes back through this channel
        let writer = ReplyWriter {
            buf: std::mem::take(&mut self.spare),
            to: self.answers.0.clone(),
            socket: (!self.secure).then(|| self.sink.shared()),
        };

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            // nowd patch: a peer gone before accept completed has no address; no panic.
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;
        self.pending = Some(self.sink.next().unwrap());
        self.answer_done = false;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // nowd patch: the answer to the previous request is written before the
        // next is read (the chunks end when the application drops its writer).
        // Meanwhile this thread waits for the next request's first bytes, so
        // that it sleeps once per request, not once for the answer and once
        // for the request.
        if let Some(mut writer) = self.pending.take() {
            let idle = !self.no_more_requests && !self.await_request(&mut writer);
            if !self.answer_done {
                for chunk in self.answers.1.iter() {
                    if chunk.is_empty() {
                        self.keep(chunk);
                        break;
                    }
                    if writer
                        .write_all(&chunk)
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        return None; // the client is gone or does not read: end
                    }
                }
            }
            if idle {
                return None; // no request came within idle_timeout
            }
        }

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        let rq = match self.read() {
            Err(ReadError::WrongRequestLine) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(400);
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                self.linger();
                return None; // we don't know where the next request would start,
                             // se we have to close
            }

            Err(ReadError::RequestLineTooLong) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(414);
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                self.linger();
                return None; // the rest of the line is unread: close
            }

            Err(ReadError::HeaderTooLarge(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(431);
                response.raw_print(writer, ver, &[], false, None).ok();
                self.linger();
                return None; // the rest of the header is unread: close
            }

            Err(ReadError::WrongHeader(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(400);
                response.raw_print(writer, ver, &[], false, None).ok();
                self.linger();
                return None; // we don't know where the next request would start,
                             // se we have to close
            }

            Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                // request timeout
                let writer = self.sink.next().unwrap();
                let response = error_answer(408);
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None; // closing the connection
            }

            Err(ReadError::VersionNotSupported) => {
                let writer = self.sink.next().unwrap();
                // nowd patch: empty, as every refusal: an answer to HEAD
                // has no body, and a body would be read as the next answer
                let response = error_answer(505);
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                self.linger();
                return None; // not HTTP/1: close
            }

            Err(ReadError::NotImplemented(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(501);
                response.raw_print(writer, ver, &[], false, None).ok();
                self.linger();
                return None; // the body's end is unknown: close
            }

            Err(ReadError::ExpectationFailed(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = error_answer(417);
                response.raw_print(writer, ver, &[], true, None).ok();
                self.linger();
                return None; // TODO: should be recoverable, but needs handling in case of body
            }

            Err(ReadError::ReadIoError(_)) | Err(ReadError::Idle) => return None,

            Ok(rq) => rq,
        };
        let mut rq = rq;

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // nowd patch: a body left unread must not be parsed as the next request
        if rq.streams_body {
            self.no_more_requests = true;
        }
        // nowd patch: near its end of life a connection reads nothing more,
        // and says so in this answer; it never closes while the client may
        // be about to send (before its idle time is over)
        if self.last_call.is_some_and(|end| Instant::now() >= end) {
            self.no_more_requests = true;
        }
        // nowd patch: tell the application, so its answer can say so
        rq.last_on_connection = self.no_more_requests;

        // returning the request
        Some(rq)
    }
}

/// The library's own error answers are never to be cached either (nowd patch).
fn no_store() -> crate::Header {
    crate::Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]).unwrap()
}

fn error_answer(code: u16) -> crate::Response<std::io::Empty> {
    crate::Response::new_empty(crate::StatusCode(code)).with_header(no_store())
}

/// Parses a "HTTP/1.1" string.
/// nowd patch: RFC 9112's rules for a request's framing headers. An HTTP/1.1
/// request has exactly one `Host` (3.2); an HTTP/1.0 one at most one; all
/// `Content-Length` values are one and the same number of digits (6.3).
fn check_framing(version: &HTTPVersion, headers: &[crate::Header]) -> Result<(), ReadError> {
    let bad = || ReadError::WrongHeader(version.clone());
    let hosts = headers.iter().filter(|h| h.field.equiv("Host")).count();
    if hosts > 1 || (hosts == 0 && *version >= HTTPVersion(1, 1)) {
        return Err(bad());
    }
    let mut lengths = headers
        .iter()
        .filter(|h| h.field.equiv("Content-Length"))
        .map(|h| h.value.as_str());
    if let Some(first) = lengths.next() {
        // a length past usize was taken for no length at all: the body was
        // then read as the next request
        if first.is_empty()
            || !first.bytes().all(|b| b.is_ascii_digit())
            || first.parse::<usize>().is_err()
        {
            return Err(bad());
        }
        if lengths.any(|other| other != first) {
            return Err(bad());
        }
    }
    Ok(())
}

/// nowd patch: `Transfer-Encoding` (upstream #287, CVE-2026-66752). tiny_http
/// read any value at all, `xchunked` or `gzip` alike, as chunked, and let it
/// override `Content-Length`: a front end that reads the same request another
/// way sees a different end of the body, and the rest is smuggled in as a
/// request of its own. Now the only coding taken is `chunked`, alone (list
/// elements trimmed, case ignored); with `Content-Length` too, in HTTP/1.0,
/// with `chunked` not last, or `chunked` more than once (in one header line
/// or across several), the framing is unreliable: 400 (RFC 9112 6.1, 6.3);
/// another coding: 501 (6.1). Either way the connection is closed.
fn check_transfer_encoding(
    version: &HTTPVersion,
    headers: &[crate::Header],
) -> Result<(), ReadError> {
    let mut codings = headers
        .iter()
        .filter(|h| h.field.equiv("Transfer-Encoding"))
        .flat_map(|h| h.value.as_str().split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .peekable();
    if codings.peek().is_none() {
        return Ok(());
    }
    let codings: Vec<String> = codings.collect();
    let bad = || ReadError::WrongHeader(version.clone());
    if *version < HTTPVersion(1, 1)
        || headers.iter().any(|h| h.field.equiv("Content-Length"))
        || codings.last().map(String::as_str) != Some("chunked")
        || codings.iter().any(String::is_empty)
        || codings.iter().filter(|c| *c == "chunked").count() > 1
    {
        return Err(bad());
    }
    if codings.len() > 1 {
        return Err(ReadError::NotImplemented(version.clone()));
    }
    Ok(())
}

/// nowd patch: the absolute form `http://host/path?query` (RFC 9112 3.2.2,
/// which a server MUST accept) as the origin form `/path?query`.
fn origin_form(target: &str) -> String {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return target.to_owned();
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_owned(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_owned(),
    }
}

fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    // nowd patch: the method is a token (RFC 9110 9.1), or the request is
    // malformed (400), not merely a method the application lacks (405)
    let method = parts
        .next()
        .filter(|w| crate::common::is_token(w))
        .and_then(|w| w.parse().ok());
    let path = parts.next().map(origin_form);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());
    // nowd patch: exactly three fields (RFC 9112 3); a fourth means the
    // line is not what it seems to a parser that stops after the version
    if parts.next().is_some() {
        return Err(ReadError::WrongRequestLine);
    }

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());

        // nowd patch: the absolute form is served as its path
        for (target, path) in [
            ("http://nowd/now", "/now"),
            ("HTTP://nowd:80/now?x=1", "/now?x=1"),
            ("https://nowd?x", "/?x"),
            ("http://nowd", "/"),
            ("/now", "/now"),
        ] {
            let line = format!("GET {target} HTTP/1.1");
            assert_eq!(
                super::parse_request_line(&line).unwrap().1,
                path,
                "{target}"
            );
        }
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
        // nowd patch: a fourth field
        assert!(super::parse_request_line("GET /now HTTP/1.1 x").is_err());
        // nowd patch: a method that is not a token
        for method in [":GET", "GE(T", "G\u{7f}T", ""] {
            let line = format!("{method} /now HTTP/1.1");
            assert!(super::parse_request_line(&line).is_err(), "{:?}", method);
        }
        let (method, ..) = super::parse_request_line("M-SEARCH * HTTP/1.1").unwrap();
        assert_eq!(method.as_str(), "M-SEARCH");
    }

    // nowd patch: which transfer codings are served, refused (400) or not implemented (501)
    #[test]
    fn transfer_codings_chunked_once_and_last() {
        use super::{check_transfer_encoding, ReadError};
        use crate::{HTTPVersion, Header};
        let check = |values: &[&str]| {
            let headers: Vec<Header> = values
                .iter()
                .map(|v| Header::from_bytes("Transfer-Encoding", *v).unwrap())
                .collect();
            check_transfer_encoding(&HTTPVersion(1, 1), &headers)
        };
        assert!(check(&["chunked"]).is_ok());
        assert!(check(&[" Chunked "]).is_ok());
        for twice in [
            &["chunked, chunked"][..],
            &["chunked", "chunked"],
            &["gzip, chunked, chunked"],
        ] {
            assert!(
                matches!(check(twice), Err(ReadError::WrongHeader(_))),
                "{:?}",
                twice
            );
        }
        assert!(matches!(
            check(&["chunked, gzip"]),
            Err(ReadError::WrongHeader(_))
        ));
        assert!(matches!(
            check(&["gzip, chunked"]),
            Err(ReadError::NotImplemented(_))
        ));
    }
}
