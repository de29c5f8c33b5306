//! Streaming uploads to WebDAV. OpenDAL serves every other WebDAV operation, but its writer is
//! one-shot: it holds the whole object in memory before a single PUT, which a multi-gigabyte backup
//! cannot afford. This is that one PUT with a streamed (chunked) body, written to `<name>.partial`
//! and moved into place with OpenDAL's `rename` (WebDAV `MOVE`) once the server accepted it all.

use super::{StorageError, WRITE_CHUNK};
use opendal::Operator;
use stowage_shared::storage::WebdavConfig;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct WebdavPut {
    client: reqwest::Client,
    /// The endpoint with the target's base path, ending in `/`.
    base: reqwest::Url,
    auth: Option<(String, String)>,
}

impl WebdavPut {
    pub fn new(config: &WebdavConfig) -> Result<Self, StorageError> {
        let mut base = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| StorageError::Config(format!("endpoint: {e}")))?;
        {
            let mut segments = base
                .path_segments_mut()
                .map_err(|()| StorageError::Config("endpoint: not an http(s) URL".into()))?;
            segments.pop_if_empty();
            segments.extend(config.base_path.split('/').filter(|s| !s.is_empty()));
            segments.push("");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| StorageError::Config(format!("http client: {e}")))?;
        Ok(Self {
            client,
            base,
            auth: (!config.username.is_empty())
                .then(|| (config.username.clone(), config.password.clone())),
        })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, StorageError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| StorageError::Config("endpoint: not an http(s) URL".into()))?
            .pop_if_empty()
            .extend(path.split('/').filter(|s| !s.is_empty()));
        Ok(url)
    }

    pub async fn write_from(
        &self,
        op: &Operator,
        path: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64, StorageError> {
        let path = path.trim_start_matches('/');
        // The target's base path and the object's directories (PUT does not create them).
        match path.rsplit_once('/') {
            Some((parent, _)) => op.create_dir(&format!("{parent}/")).await?,
            None => op.create_dir("/").await?,
        }
        let partial = format!("{path}.partial");
        // Two pieces in flight at most: the one being sent and the one being read.
        let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(1);
        let body =
            reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let mut request = self.client.put(self.url(&partial)?).body(body);
        if let Some((user, pass)) = &self.auth {
            request = request.basic_auth(user, Some(pass));
        }
        // `move`: the sender must drop when the source ends, or the body would never finish.
        let pump = async move {
            let mut total = 0u64;
            loop {
                let mut piece = Vec::with_capacity(WRITE_CHUNK.min(1 << 20));
                match (&mut *reader).take(1 << 20).read_to_end(&mut piece).await {
                    Ok(0) => return Ok(total),
                    Ok(n) => {
                        total += n as u64;
                        if tx.send(Ok(piece)).await.is_err() {
                            // The request ended early; its error says why.
                            return Ok(total);
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        let _ = tx.send(Err(std::io::Error::other(text.clone()))).await;
                        return Err(StorageError::Source(std::io::Error::other(text)));
                    }
                }
            }
        };
        let (sent, pumped) = tokio::join!(request.send(), pump);
        let outcome = match (sent, pumped) {
            (_, Err(e)) => Err(e),
            (Err(e), _) => Err(StorageError::Webdav(format!(
                "PUT failed: {}",
                root_cause(&e)
            ))),
            (Ok(resp), Ok(total)) if resp.status().is_success() => Ok(total),
            (Ok(resp), Ok(_)) => Err(StorageError::Webdav(format!(
                "PUT was refused: {}",
                resp.status()
            ))),
        };
        match outcome {
            Ok(total) => {
                op.rename(&partial, path).await?;
                Ok(total)
            }
            Err(e) => {
                let _ = op.delete(&partial).await;
                Err(e)
            }
        }
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    text
}
