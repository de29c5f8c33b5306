//! Email notifications over SMTP, from the Worker's outbound TCP sockets. wasm-smtp speaks the
//! protocol (EHLO, STARTTLS, AUTH, dot-stuffing), wasm-smtp-cloudflare binds it to
//! `worker::Socket`, and mail-builder writes the message (encoded headers, folded lines).

use mail_builder::MessageBuilder;
use stowage_shared::notifications::{EmailSend, SmtpSecurity};
use stowage_shared::time::Timestamp;
use wasm_smtp::{SmtpClient, SmtpError};
use wasm_smtp_cloudflare::{CloudflareTransport, connect_smtp_starttls, connect_smtps};
use worker::{SecureTransport, Socket};

/// Builds the message. Date and Message-ID are given, because mail-builder would otherwise read
/// the system clock, which wasm32 in a Worker does not have.
fn message(send: &EmailSend, now: Timestamp, host: &str) -> Result<String, String> {
    let c = &send.config;
    MessageBuilder::new()
        .from(c.from.as_str())
        .to(c.to.iter().map(String::as_str).collect::<Vec<_>>())
        .subject(send.subject.as_str())
        .date(now.timestamp())
        .message_id(format!(
            "stowage.{}.{}@{host}",
            now.timestamp_millis(),
            send.subject.len()
        ))
        .text_body(send.text.as_str())
        .write_to_string()
        .map_err(|e| format!("could not build the message: {e}"))
}

async fn plain(
    host: &str,
    port: u16,
    ehlo: &str,
) -> Result<SmtpClient<CloudflareTransport>, SmtpError> {
    let socket = Socket::builder()
        .secure_transport(SecureTransport::Off)
        .connect(host.to_owned(), port)
        .map_err(|e| wasm_smtp::IoError::new(format!("connect to {host}:{port} failed: {e}")))?;
    socket
        .opened()
        .await
        .map_err(|e| wasm_smtp::IoError::new(format!("connect to {host}:{port} failed: {e}")))?;
    SmtpClient::connect(CloudflareTransport::from_socket(socket), ehlo).await
}

/// Sends one email; the error says which step failed and what the server answered.
pub async fn send(send: &EmailSend, now: Timestamp, ehlo: String) -> Result<(), String> {
    let c = &send.config;
    let body = message(send, now, &ehlo)?;
    let host = c.host.trim();
    let step =
        |what: &'static str| move |e: SmtpError| format!("SMTP {what} ({host}:{}): {e}", c.port);
    let mut client = match c.security {
        SmtpSecurity::Tls => connect_smtps(host, c.port, &ehlo).await,
        SmtpSecurity::Starttls => connect_smtp_starttls(host, c.port, &ehlo).await,
        SmtpSecurity::None => plain(host, c.port, &ehlo).await,
    }
    .map_err(step("connection"))?;
    if !c.username.is_empty() {
        client
            .login(&c.username, &c.password)
            .await
            .map_err(step("sign-in"))?;
    }
    let to: Vec<&str> = c.to.iter().map(String::as_str).collect();
    client
        .send_mail(&c.from, &to, &body)
        .await
        .map_err(step("delivery"))?;
    // The message is accepted; a failing QUIT changes nothing about that.
    let _ = client.quit().await;
    Ok(())
}
