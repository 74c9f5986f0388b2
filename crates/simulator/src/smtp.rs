//! An SMTP server that keeps every message it is given: the demo's and the
//! tests' mail server, so incasso's e-mail goes through a real SMTP
//! conversation (RFC 5321: EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP,
//! QUIT) and can then be read back as JSON (`GET /simulator/mail`), its
//! MIME parts decoded.
//!
//! Plain SMTP only (no STARTTLS, no AUTH): it listens on loopback. Faults
//! ([`crate::Faults`]): `smtp_transient_next` answers 451 at the end of
//! the next N messages, `smtp_permanent` answers 554 to every message.

use crate::Simulator;
use base64::Engine as _;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The largest message taken (SIZE in EHLO's answer).
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// The longest command line (RFC 5321 says 512 octets; some slack).
const MAX_COMMAND: usize = 2048;
/// Recipients per message.
const MAX_RECIPIENTS: usize = 100;
const NAME: &str = "incasso-simulator";

/// A message as received.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMail {
    /// The envelope's sender (MAIL FROM).
    pub from: String,
    /// The envelope's recipients (RCPT TO).
    pub to: Vec<String>,
    /// The Subject header, decoded.
    pub subject: String,
    /// RFC 3339.
    pub received_at: String,
    /// The first text/plain part, decoded.
    pub text: String,
    /// The message exactly as sent (RFC 5322), dot-stuffing undone.
    pub raw: String,
    pub attachments: Vec<MailAttachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailAttachment {
    pub filename: String,
    pub content_type: String,
    /// The content, base64 (standard alphabet, no line breaks).
    pub base64: String,
}

impl MailAttachment {
    pub fn bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .unwrap_or_default()
    }
}

impl Simulator {
    /// Serves SMTP on `listener` until the task is dropped.
    pub async fn serve_smtp(self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let sim = self.clone();
            tokio::spawn(async move {
                if let Err(e) = session(&sim, stream).await {
                    tracing::debug!(error = %e, "SMTP session ended with an error");
                }
            });
        }
    }

    /// Every message received so far, oldest first.
    pub fn mail(&self) -> Vec<ReceivedMail> {
        self.inner.mail.lock().expect("mail lock").clone()
    }

    /// The messages received so far, forgotten here: a long run (a
    /// benchmark's) reads them as they come without keeping them all.
    pub fn take_mail(&self) -> Vec<ReceivedMail> {
        std::mem::take(&mut *self.inner.mail.lock().expect("mail lock"))
    }

    /// Forgets the messages received so far.
    pub fn clear_mail(&self) {
        self.inner.mail.lock().expect("mail lock").clear();
    }

    /// The answer to a whole message, as the switched-on faults say.
    fn smtp_verdict(&self) -> Option<&'static str> {
        let mut f = self.inner.faults.lock().expect("faults lock");
        if f.smtp_permanent {
            return Some("554 5.7.1 messaggio rifiutato (guasto simulato permanente)");
        }
        if f.smtp_transient_next > 0 {
            f.smtp_transient_next -= 1;
            return Some("451 4.3.0 errore temporaneo, riprovare (guasto simulato)");
        }
        None
    }
}

/// One client's conversation.
async fn session(sim: &Simulator, stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let reply = |text: &str| format!("{text}\r\n");
    write
        .write_all(reply(&format!("220 {NAME} ESMTP pronto")).as_bytes())
        .await?;
    let mut greeted = false;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line(&mut read, &mut line, MAX_COMMAND).await?;
        if n == 0 {
            return Ok(());
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            write
                .write_all(reply("500 5.5.2 comando non leggibile").as_bytes())
                .await?;
            continue;
        };
        let text = text.trim_end_matches(['\r', '\n']);
        let verb = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer: String = match verb.as_str() {
            _ if line.len() > MAX_COMMAND => reply("500 5.5.2 riga troppo lunga"),
            "EHLO" => {
                greeted = true;
                from = None;
                to.clear();
                format!(
                    "250-{NAME} salve\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
                )
            }
            "HELO" => {
                greeted = true;
                from = None;
                to.clear();
                reply(&format!("250 {NAME}"))
            }
            "MAIL" if !greeted => reply("503 5.5.1 prima EHLO o HELO"),
            "MAIL" => match path_of(text, "FROM:") {
                Some(addr) => {
                    if let Some(size) = size_param(text)
                        && size > MAX_MESSAGE
                    {
                        reply("552 5.3.4 messaggio troppo grande")
                    } else {
                        from = Some(addr);
                        to.clear();
                        reply("250 2.1.0 mittente accettato")
                    }
                }
                None => reply("501 5.5.4 sintassi: MAIL FROM:<indirizzo>"),
            },
            "RCPT" if from.is_none() => reply("503 5.5.1 prima MAIL FROM"),
            "RCPT" => match path_of(text, "TO:") {
                Some(addr) if addr.contains('@') && to.len() < MAX_RECIPIENTS => {
                    to.push(addr);
                    reply("250 2.1.5 destinatario accettato")
                }
                Some(_) if to.len() >= MAX_RECIPIENTS => reply("452 4.5.3 troppi destinatari"),
                _ => reply("501 5.1.3 sintassi: RCPT TO:<indirizzo>"),
            },
            "DATA" if to.is_empty() => reply("503 5.5.1 prima RCPT TO"),
            "DATA" => {
                write
                    .write_all(reply("354 dati: terminare con <CR><LF>.<CR><LF>").as_bytes())
                    .await?;
                let (raw, too_big) = read_data(&mut read).await?;
                let answer = if too_big {
                    reply("552 5.3.4 messaggio troppo grande")
                } else if let Some(fault) = sim.smtp_verdict() {
                    reply(fault)
                } else {
                    let message = String::from_utf8_lossy(&raw).into_owned();
                    let mail = received(from.clone().unwrap_or_default(), to.clone(), message);
                    sim.inner.mail.lock().expect("mail lock").push(mail);
                    reply("250 2.0.0 messaggio accettato")
                };
                from = None;
                to.clear();
                answer
            }
            "RSET" => {
                from = None;
                to.clear();
                reply("250 2.0.0 azzerato")
            }
            "NOOP" => reply("250 2.0.0 ok"),
            "VRFY" => reply("252 2.1.5 non verificabile"),
            "QUIT" => {
                write
                    .write_all(reply("221 2.0.0 arrivederci").as_bytes())
                    .await?;
                return Ok(());
            }
            _ => reply("500 5.5.2 comando non riconosciuto"),
        };
        write.write_all(answer.as_bytes()).await?;
    }
}

/// Reads one line (up to `\n`), keeping at most `max` bytes of it; the
/// rest of an overlong line is read and dropped. Returns the bytes read.
async fn read_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = read.fill_buf().await?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let take = chunk.len().min((max + 1).saturating_sub(line.len()));
        line.extend_from_slice(&chunk[..take]);
        let used = chunk.len();
        read.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

/// The message after DATA, up to the line holding a lone dot, with
/// dot-stuffing undone; and whether it was over [`MAX_MESSAGE`] (its
/// excess is read and dropped, so the conversation can go on).
async fn read_data(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line(read, &mut line, 1 << 20).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((out, too_big));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if out.len() + content.len() > MAX_MESSAGE {
            too_big = true;
        } else {
            out.extend_from_slice(content);
        }
    }
}

/// The address in `MAIL FROM:<a>` or `RCPT TO:<a>` (parameters after it
/// ignored); `<>` is the null sender.
fn path_of(command: &str, keyword: &str) -> Option<String> {
    let upper = command.to_ascii_uppercase();
    let at = upper.find(keyword)? + keyword.len();
    let rest = command[at..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// The `SIZE=n` parameter of MAIL FROM, if any.
fn size_param(command: &str) -> Option<usize> {
    command
        .split_whitespace()
        .find_map(|p| {
            p.to_ascii_uppercase()
                .strip_prefix("SIZE=")
                .map(str::to_string)
        })
        .and_then(|n| n.parse().ok())
}

fn received(from: String, to: Vec<String>, raw: String) -> ReceivedMail {
    let parsed = parse_message(&raw);
    ReceivedMail {
        from,
        to,
        subject: parsed.subject,
        received_at: chrono::Utc::now().to_rfc3339(),
        text: parsed.text,
        raw,
        attachments: parsed.attachments,
    }
}

/// What the JSON view shows of a message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub subject: String,
    pub text: String,
    pub attachments: Vec<MailAttachment>,
}

/// Reads an RFC 5322 message with MIME parts: the subject (RFC 2047
/// encoded words decoded), the first text/plain part, and every part with
/// a file name or a disposition of `attachment`. Enough for what mail
/// clients and lettre write; anything unreadable is left out, never a
/// panic.
pub fn parse_message(raw: &str) -> Parsed {
    let (headers, body) = split_head(raw);
    let mut out = Parsed {
        subject: header(&headers, "subject")
            .map(decode_words)
            .unwrap_or_default(),
        ..Parsed::default()
    };
    walk(&headers, body, &mut out, 0);
    out
}

/// Headers (unfolded, as name and value) and the body.
fn split_head(part: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match part.find("\r\n\r\n") {
        Some(i) => (&part[..i], &part[i + 4..]),
        None => match part.find("\n\n") {
            Some(i) => (&part[..i], &part[i + 2..]),
            None => (part, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body)
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter of a structured header (`boundary`, `filename`, `name`),
/// quoted or not; RFC 2231's `filename*=utf-8''...` is read too.
fn param(value: &str, name: &str) -> Option<String> {
    for piece in value.split(';').skip(1) {
        let Some((k, v)) = piece.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim();
        if k == name {
            return Some(decode_words(v.trim_matches('"')));
        }
        if k == format!("{name}*") {
            let v = v.trim_matches('"');
            let encoded = v.splitn(3, '\'').nth(2).unwrap_or(v);
            return Some(percent_decode(encoded));
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn walk(headers: &[(String, String)], body: &str, out: &mut Parsed, depth: usize) {
    if depth > 8 {
        return;
    }
    let content_type = header(headers, "content-type").unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        let Some(boundary) = param(content_type, "boundary") else {
            return;
        };
        for part in parts(body, &boundary) {
            let (h, b) = split_head(part);
            walk(&h, b, out, depth + 1);
        }
        return;
    }
    let encoding = header(headers, "content-transfer-encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .unwrap_or_default(),
        "quoted-printable" => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    let disposition = header(headers, "content-disposition").unwrap_or_default();
    let filename = param(disposition, "filename").or_else(|| param(content_type, "name"));
    let attachment = disposition
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("attachment");
    if attachment || filename.is_some() {
        out.attachments.push(MailAttachment {
            filename: filename.unwrap_or_default(),
            content_type: mime,
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        });
    } else if mime == "text/plain" && out.text.is_empty() {
        out.text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    }
}

/// The parts of a multipart body between `--boundary` lines.
fn parts<'b>(body: &'b str, boundary: &str) -> Vec<&'b str> {
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    // Skip the preamble.
    let Some(start) = rest.find(&delimiter) else {
        return out;
    };
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with("--") {
            break;
        }
        let rest_line = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        let Some(end) = rest_line.find(&delimiter) else {
            break;
        };
        let part = &rest_line[..end];
        out.push(
            part.strip_suffix("\r\n")
                .or(part.strip_suffix('\n'))
                .unwrap_or(part),
        );
        rest = &rest_line[end + delimiter.len()..];
    }
    out
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => match body
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`);
/// the space between two adjacent encoded words is dropped, as the RFC
/// says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let decoded = from[2..].splitn(3, '?').collect::<Vec<_>>();
        let word = match decoded.as_slice() {
            [_charset, enc, tail] => tail.find("?=").map(|end| (enc, &tail[..end], end)),
            _ => None,
        };
        let Some((enc, text, end)) = word else {
            out.push_str(before);
            out.push_str("=?");
            rest = &from[2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let bytes = match enc.to_ascii_lowercase().as_str() {
            "b" => base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default(),
            _ => quoted_printable(&text.replace('_', " ")),
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        // `=?` + charset + `?` + enc + `?` + text + `?=`
        let consumed = 2 + decoded[0].len() + 1 + decoded[1].len() + 1 + end + 2;
        rest = &from[consumed..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decode_words("=?utf-8?b?UmljZXZ1dGEg4oCTIENvbXVuZQ==?="),
            "Ricevuta – Comune"
        );
        assert_eq!(
            decode_words("=?utf-8?q?Ricevuta_=E2=80=93?= =?utf-8?q?_Comune?= di Roma"),
            "Ricevuta – Comune di Roma"
        );
        assert_eq!(decode_words("plain = text ?="), "plain = text ?=");
    }

    #[test]
    fn a_multipart_message_gives_its_text_and_attachment() {
        let raw = "From: a@b.it\r\nTo: c@d.it\r\nSubject: =?utf-8?b?UmljZXZ1dGEg4oCTIEVudGU=?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"XyZ\"\r\n\r\n\
preamble\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Pagamento di 1.234,56 =E2=82=AC a=\r\n favore\r\n--XyZ\r\n\
Content-Disposition: attachment; filename=\"ricevuta-01.pdf\"\r\nContent-Type: application/pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\nLjc=\r\n--XyZ--\r\n";
        let p = parse_message(raw);
        assert_eq!(p.subject, "Ricevuta – Ente");
        assert_eq!(p.text, "Pagamento di 1.234,56 € a favore");
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(p.attachments[0].filename, "ricevuta-01.pdf");
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert_eq!(p.attachments[0].bytes(), b"%PDF-1.7");
    }

    #[test]
    fn commands_are_read_with_their_parameters() {
        assert_eq!(
            path_of("MAIL FROM:<a@b.it> BODY=8BITMIME SIZE=100", "FROM:").as_deref(),
            Some("a@b.it")
        );
        assert_eq!(
            path_of("rcpt to: <c@d.it>", "TO:").as_deref(),
            Some("c@d.it")
        );
        assert_eq!(path_of("MAIL FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_of("MAIL FROM:a@b.it", "FROM:"), None);
        assert_eq!(size_param("MAIL FROM:<a@b.it> SIZE=100"), Some(100));
    }
}
