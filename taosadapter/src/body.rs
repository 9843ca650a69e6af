//! Reading request bodies: the size limit and `Content-Encoding: gzip`, shared by every route.
//!
//! The limit is checked three times: against `Content-Length` before reading anything, against
//! the bytes received while streaming (a lying or absent length cannot get past it), and against
//! the decompressed size (a small gzip bomb cannot either).

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("invalid content length")]
    BadLength,
    #[error("cannot read request body: {0}")]
    Read(String),
    #[error("invalid gzip body: {0}")]
    Gzip(String),
    #[error("unsupported Content-Encoding: {0}")]
    Encoding(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(BodyError::Encoding(v)),
    }
}

/// Read the whole body, decompressed, refusing more than `limit` bytes at any stage.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, BodyError> {
    let enc = encoding(headers)?;
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(BodyError::BadLength)?;
        if len > limit {
            return Err(BodyError::TooLarge { limit });
        }
    }
    let mut buf = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    let raw = buf.freeze();
    match enc {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip | Encoding::Deflate => {
            // Decompression is CPU work: keep it off the async workers.
            let gzip = matches!(enc, Encoding::Gzip);
            tokio::task::spawn_blocking(move || inflate(&raw, gzip, limit))
                .await
                .map_err(|e| BodyError::Read(e.to_string()))?
        }
    }
}

fn inflate(raw: &[u8], gzip: bool, limit: u64) -> Result<Bytes, BodyError> {
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(flate2::read::ZlibDecoder::new(raw))
    };
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Gzip(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn limits_and_gzip() {
        let h = headers(&[]);
        let b = read_body(&h, Body::from("select 1"), 100).await.unwrap();
        assert_eq!(&b[..], b"select 1");
        let e = read_body(&h, Body::from(vec![b'x'; 101]), 100)
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { .. }));
        let h = headers(&[("content-length", "1000")]);
        let e = read_body(&h, Body::from("x"), 100).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let h = headers(&[("content-encoding", "gzip")]);
        let b = read_body(&h, Body::from(gz(b"cpu v=1")), 100)
            .await
            .unwrap();
        assert_eq!(&b[..], b"cpu v=1");
        // A bomb: small compressed, large inflated.
        let bomb = gz(&vec![b'a'; 10_000]);
        assert!(bomb.len() < 100);
        let e = read_body(&h, Body::from(bomb), 100).await.unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { .. }));
        let e = read_body(&h, Body::from("not gzip"), 100)
            .await
            .unwrap_err();
        assert!(matches!(e, BodyError::Gzip(_)));
        let h = headers(&[("content-encoding", "br")]);
        let e = read_body(&h, Body::from("x"), 100).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
