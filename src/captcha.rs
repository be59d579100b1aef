//! CAPTCHA challenges: an image (letters that can't be mistaken for each other)
//! and an audio alternative (7 spoken digits 1-9 with noise and random spacing).
//!
//! Only the answers are stored, bound to the pre-session that asked for the
//! challenge, for `captcha_ttl`; the PNG and WAV are rendered on request. A
//! challenge is consumed by its first answer, right or wrong (atomic `take`).
//! Either answer solves it: the image's letters or the audio's digits,
//! case-insensitive, spaces ignored.

use std::io::Cursor;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::store::{DynStore, StoreError};

/// Letters and digits with no look-alikes (no 0/O, 1/l/I, 5/S, 2/Z, 8/B, ...).
const IMAGE_CHARS: &[char] = &[
    'a', 'c', 'd', 'e', 'f', 'h', 'k', 'm', 'n', 'p', 'r', 't', 'w', 'x', 'y', '3', '4', '6', '7',
    '9',
];
const AUDIO_DIGITS: usize = 7;
const IMAGE_LEN: usize = 6;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    image: String,
    audio: String,
    pre: String,
}

#[derive(Clone)]
pub struct Captchas {
    store: DynStore,
    pub ttl: Duration,
}

fn key(id: &str) -> String {
    format!("captcha:{id}")
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn normalise(answer: &str) -> String {
    answer
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Captchas {
    pub fn new(store: DynStore, ttl: Duration) -> Captchas {
        Captchas { store, ttl }
    }

    /// A new challenge for this pre-session; returns its id.
    pub async fn create(&self, pre: &str) -> Result<String, StoreError> {
        let id = crate::cookies::new_pre_id();
        let mut rng = rand::rngs::OsRng;
        let image: String = (0..IMAGE_LEN)
            .map(|_| *IMAGE_CHARS.choose(&mut rng).unwrap_or(&'x'))
            .collect();
        // 1-9: the crate's public audio path goes through its font, which has no '0'.
        let audio: String = (0..AUDIO_DIGITS)
            .map(|_| char::from(b'0' + rng.gen_range(1..10u8)))
            .collect();
        let s = Stored {
            image,
            audio,
            pre: pre.to_string(),
        };
        let bytes = serde_json::to_vec(&s).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.store.set(&key(&id), &bytes, self.ttl).await?;
        Ok(id)
    }

    async fn peek(&self, id: &str, pre: &str) -> Result<Option<Stored>, StoreError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let Some(b) = self.store.get(&key(id)).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Stored>(&b)
            .ok()
            .filter(|s| s.pre == pre))
    }

    /// The PNG of a challenge, only for the pre-session it belongs to.
    pub async fn png(&self, id: &str, pre: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.peek(id, pre).await?.and_then(|s| render_png(&s.image)))
    }

    /// The WAV of a challenge, only for the pre-session it belongs to.
    pub async fn wav(&self, id: &str, pre: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.peek(id, pre).await?.and_then(|s| render_wav(&s.audio)))
    }

    /// Checks an answer and consumes the challenge whatever the outcome.
    pub async fn solve(&self, id: &str, pre: &str, answer: &str) -> Result<bool, StoreError> {
        if !valid_id(id) {
            return Ok(false);
        }
        let Some(b) = self.store.take(&key(id)).await? else {
            return Ok(false);
        };
        let Ok(s) = serde_json::from_slice::<Stored>(&b) else {
            return Ok(false);
        };
        if s.pre != pre {
            return Ok(false);
        }
        let a = normalise(answer);
        let eq =
            |want: &str| want.len() == a.len() && bool::from(want.as_bytes().ct_eq(a.as_bytes()));
        Ok(eq(&s.image) | eq(&s.audio))
    }

    /// The answers, for tests that solve a challenge through the code's own API.
    pub async fn answers_for_tests(
        &self,
        id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let Some(b) = self.store.get(&key(id)).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Stored>(&b)
            .ok()
            .map(|s| (s.image, s.audio)))
    }
}

/// Renders exactly `text` (the crate picks from the allowed set, so allow one char at a time).
pub fn render_png(text: &str) -> Option<Vec<u8>> {
    let mut c = captcha::Captcha::new();
    for ch in text.chars() {
        c.set_chars(&[ch]).add_char();
    }
    if c.chars_as_string() != text {
        return None;
    }
    // Enough distortion to trouble OCR, not so much that people can't read it
    // (checked by eye; the audio challenge is there for anyone who can't).
    c.apply_filter(captcha::filters::Wave::new(2.0, 6.0).horizontal())
        .apply_filter(captcha::filters::Wave::new(2.0, 5.0).vertical())
        .view(240, 90)
        .apply_filter(captcha::filters::Noise::new(0.02))
        .apply_filter(captcha::filters::Grid::new(28, 22));
    c.as_png()
}

/// Spoken digits, each from the crate's samples, with random pauses and background noise.
pub fn render_wav(digits: &str) -> Option<Vec<u8>> {
    let mut rng = rand::thread_rng();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).ok()?;
        let noise = |w: &mut hound::WavWriter<&mut Cursor<Vec<u8>>>,
                     n: usize,
                     rng: &mut rand::rngs::ThreadRng| {
            for _ in 0..n {
                w.write_sample(rng.gen_range(-1200i16..1200)).ok()?;
            }
            Some(())
        };
        noise(&mut w, 22050 / 2, &mut rng)?;
        for d in digits.chars() {
            let mut c = captcha::Captcha::new();
            c.set_chars(&[d]).add_char();
            let wav = c.as_wav().into_iter().next().flatten()?;
            let mut r = hound::WavReader::new(&wav[..]).ok()?;
            for s in r.samples::<i16>() {
                let s = s.ok()?;
                w.write_sample(s.saturating_add(rng.gen_range(-1200i16..1200)))
                    .ok()?;
            }
            let gap = rng.gen_range(22050 * 3 / 10..22050 * 9 / 10);
            noise(&mut w, gap, &mut rng)?;
        }
        w.finalize().ok()?;
    }
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_png_and_wav() {
        let png = render_png("ac3d7x").unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let wav = render_wav("1234567").unwrap();
        let r = hound::WavReader::new(&wav[..]).unwrap();
        assert_eq!(r.spec().sample_rate, 22050);
        assert!(
            r.duration() > 22050 * 3,
            "seven digits with pauses last seconds"
        );
        // Random spacing and noise: two renderings of the same digits differ.
        assert_ne!(wav, render_wav("1234567").unwrap());
    }

    #[tokio::test]
    async fn challenges_expire() {
        let c = Captchas::new(
            Arc::new(crate::store::memory::MemoryStore::new()),
            Duration::from_millis(300),
        );
        let id = c.create("pre1").await.unwrap();
        let (image, _) = c.answers_for_tests(&id).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(c.png(&id, "pre1").await.unwrap().is_none());
        assert!(
            !c.solve(&id, "pre1", &image).await.unwrap(),
            "an expired challenge is not accepted"
        );
    }

    #[tokio::test]
    async fn single_use_bound_and_either_answer() {
        let c = Captchas::new(
            Arc::new(crate::store::memory::MemoryStore::new()),
            Duration::from_secs(60),
        );
        let id = c.create("pre1").await.unwrap();
        let (image, audio) = c.answers_for_tests(&id).await.unwrap().unwrap();
        assert!(
            c.png(&id, "pre2").await.unwrap().is_none(),
            "bound to its pre-session"
        );
        assert!(c.png(&id, "pre1").await.unwrap().is_some());
        assert!(!c.solve(&id, "pre2", &image).await.unwrap());
        assert!(
            !c.solve(&id, "pre1", &image).await.unwrap(),
            "consumed by the foreign attempt"
        );
        let id = c.create("pre1").await.unwrap();
        let (image, _) = c.answers_for_tests(&id).await.unwrap().unwrap();
        assert!(c
            .solve(&id, "pre1", &format!(" {} ", image.to_uppercase()))
            .await
            .unwrap());
        assert!(!c.solve(&id, "pre1", &image).await.unwrap(), "single use");
        let id = c.create("pre1").await.unwrap();
        let (_, audio2) = c.answers_for_tests(&id).await.unwrap().unwrap();
        let spaced: String = audio2.chars().flat_map(|d| [d, ' ']).collect();
        assert!(
            c.solve(&id, "pre1", &spaced).await.unwrap(),
            "digits with spaces"
        );
        let _ = audio;
    }
}
