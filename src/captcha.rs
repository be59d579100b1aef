//! CAPTCHA challenges: an image (letters that can't be mistaken for each other)
//! and an audio alternative (7 spoken digits 1-9, each at its own pitch, tempo
//! and loudness, over babble and noise; see "Audio" below for why).
//!
//! Only the answers are stored, bound to the pre-session that asked for the
//! challenge, for `captcha_ttl`; the PNG and WAV are rendered on request. A
//! challenge is consumed by its first answer, right or wrong (atomic `take`).
//! Either answer solves it: the image's letters or the audio's digits,
//! case-insensitive, spaces ignored.

use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Duration;

use rand::rngs::{OsRng, StdRng};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::store::keys::captcha as key;
use crate::store::{DynStore, StoreError};

/// Letters and digits with no look-alikes (no 0/O, 1/l/I, 5/S, 2/Z, 8/B, ...).
const IMAGE_CHARS: &[char] = &[
    'a', 'c', 'd', 'e', 'f', 'h', 'k', 'm', 'n', 'p', 'r', 't', 'w', 'x', 'y', '3', '4', '6', '7',
    '9',
];
const AUDIO_DIGITS: usize = 7;
const IMAGE_LEN: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Stored {
    image: String,
    audio: String,
    pre: String,
}

impl Stored {
    /// As stored: JSON built by hand from three strings, which can't fail (so a store
    /// error is only ever the store's).
    fn to_json(&self) -> Vec<u8> {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("image", &self.image),
            ("audio", &self.audio),
            ("pre", &self.pre),
        ] {
            m.insert(k.into(), serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(m).to_string().into_bytes()
    }
}

#[derive(Clone)]
pub struct Captchas {
    store: DynStore,
    pub ttl: Duration,
}

/// How many times one challenge's picture (and, apart, its sound) is rendered: the
/// page, a reload, one more. Each rendering is drawn afresh (new noise), so without a
/// bound many renderings of one answer could be laid over each other to read it
/// (attack pass); a new challenge comes with a new sign-in page.
pub const MAX_SHOWN: u64 = 3;

/// How many times one challenge's sound is played: a listener may need it again
/// (each play of the page's player is a new request).
pub const MAX_PLAYED: u64 = 8;

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
        self.store.set(&key(&id), &s.to_json(), self.ttl).await?;
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

    /// The PNG of a challenge, only for the pre-session it belongs to, and at most
    /// [`MAX_SHOWN`] times.
    pub async fn png(&self, id: &str, pre: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(s) = self.to_show(id, pre, "png", MAX_SHOWN).await? else {
            return Ok(None);
        };
        Ok(off_the_workers(move || render_png(&s.image)).await)
    }

    /// The WAV of a challenge, only for the pre-session it belongs to, and at most
    /// [`MAX_PLAYED`] times.
    pub async fn wav(&self, id: &str, pre: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(s) = self.to_show(id, pre, "wav", MAX_PLAYED).await? else {
            return Ok(None);
        };
        Ok(off_the_workers(move || render_wav(&s.audio)).await)
    }

    /// The challenge, unless its `kind` of media was given `most` times already.
    async fn to_show(
        &self,
        id: &str,
        pre: &str,
        kind: &str,
        most: u64,
    ) -> Result<Option<Stored>, StoreError> {
        let Some(s) = self.peek(id, pre).await? else {
            return Ok(None);
        };
        let shown = self
            .store
            .incr(&format!("{}:{kind}", key(id)), self.ttl)
            .await?;
        Ok((shown <= most).then_some(s))
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
    #[cfg(any(test, feature = "test-support"))]
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

/// Runs a rendering (milliseconds of CPU) on the blocking pool, so the async
/// workers keep serving requests meanwhile. `None` if it failed (or panicked).
async fn off_the_workers(
    render: impl FnOnce() -> Option<Vec<u8>> + Send + 'static,
) -> Option<Vec<u8>> {
    match tokio::task::spawn_blocking(render).await {
        Ok(out) => out,
        Err(e) => {
            tracing::error!(error = %e, "CAPTCHA rendering failed");
            None
        }
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

// ---------------------------------------------------------------------------
// Audio
//
// The crate ships one fixed recording per digit, and those recordings are
// public. Played back as they are, a script solves the challenge by matching
// them (or just their lengths). So every rendering changes each digit
// (pitch, tempo, length, loudness, timbre) and hides it in babble made from
// other digits, time-reversed or chopped up, plus shaped noise. A person
// hears seven digits in a noisy room; a template matcher sees nothing that
// lines up with the recordings, and neither a digit's length nor the file's
// length says anything about the digits, because both are drawn from the
// same ranges whatever the digits are.
//
// All of it comes from a ChaCha generator seeded from the OS, so nothing in
// one rendering predicts the next. Rendering is plain arithmetic on about
// 200k samples (a few ms in release builds).

/// Output sample rate (the crate's recordings use it too).
const RATE: u32 = 22050;
const RATE_F: f32 = RATE as f32;
/// How many of the crate's (noisy) copies of each digit are averaged to
/// recover a clean recording, once per process.
const AVERAGE_OF: usize = 16;
/// Every spoken digit lasts this long (seconds), drawn uniformly per digit,
/// whichever digit it is.
const DIGIT_SECONDS: (f32, f32) = (0.50, 0.78);
/// Pitch factor range (resampling): below 1 is deeper, above 1 is higher.
const PITCH: (f32, f32) = (0.84, 1.20);
/// Silence-free gap between two digits, and the padding before the first and
/// after the last (seconds); the babble and noise run through all of them.
const GAP_SECONDS: (f32, f32) = (0.30, 0.80);
const PAD_SECONDS: (f32, f32) = (0.25, 1.10);
/// Babble and noise levels relative to the spoken digits' RMS, in dB.
const BABBLE_DB: (f32, f32) = (-15.0, -10.0);
const NOISE_DB: (f32, f32) = (-24.0, -19.0);

/// Clean recordings of 1-9 (index 0 is '1'), trimmed to the speech and
/// scaled to the same RMS; `None` if the crate's audio could not be read.
fn digit_recordings() -> Option<&'static [Vec<f32>; 9]> {
    static CLEAN: OnceLock<Option<[Vec<f32>; 9]>> = OnceLock::new();
    CLEAN.get_or_init(load_recordings).as_ref()
}

/// The crate adds fresh white noise to every copy it hands out, so averaging
/// copies recovers the recording (what anyone can also do with the crate's
/// public source). One `as_wav` call parses the crate's sample file once for
/// all copies.
fn load_recordings() -> Option<[Vec<f32>; 9]> {
    let mut c = captcha::Captcha::new();
    for _ in 0..AVERAGE_OF {
        for d in '1'..='9' {
            c.set_chars(&[d]).add_char();
        }
    }
    if c.chars().len() != 9 * AVERAGE_OF {
        return None;
    }
    let mut sums: [Vec<f32>; 9] = Default::default();
    for (i, wav) in c.as_wav().into_iter().enumerate() {
        let wav = wav?;
        let mut r = hound::WavReader::new(&wav[..]).ok()?;
        let sum = sums.get_mut(i % 9)?;
        for (n, s) in r.samples::<i16>().enumerate() {
            let v = f32::from(s.ok()?) / 32768.0 / AVERAGE_OF as f32;
            match sum.get_mut(n) {
                Some(a) => *a += v,
                None => sum.push(v),
            }
        }
    }
    let mut out: [Vec<f32>; 9] = Default::default();
    for (o, s) in out.iter_mut().zip(&sums) {
        *o = trim_to_speech(s)?;
    }
    Some(out)
}

/// The part of a recording between its first and last loud 10 ms frame,
/// faded in and out and scaled to RMS 0.1.
fn trim_to_speech(x: &[f32]) -> Option<Vec<f32>> {
    let frame = (RATE / 100) as usize;
    let energy: Vec<f32> = x.chunks(frame).map(rms).collect();
    let loudest = energy.iter().copied().fold(0.0f32, f32::max);
    if loudest <= 0.0 {
        return None;
    }
    let loud = |e: &f32| *e > loudest * 0.1;
    let first = energy.iter().position(loud)?;
    let last = energy.iter().rposition(loud)?;
    let start = first.saturating_sub(2) * frame;
    let end = ((last + 3) * frame).min(x.len());
    let mut v = x.get(start..end)?.to_vec();
    fade(&mut v, frame);
    let r = rms(&v);
    if r <= 0.0 {
        return None;
    }
    v.iter_mut().for_each(|s| *s *= 0.1 / r);
    Some(v)
}

fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
}

/// Linear fade over `n` samples at both ends, so cuts don't click.
fn fade(x: &mut [f32], n: usize) {
    let n = n.min(x.len() / 2).max(1);
    let len = x.len();
    for i in 0..n {
        let g = i as f32 / n as f32;
        if let Some(s) = x.get_mut(i) {
            *s *= g;
        }
        if let Some(s) = x.get_mut(len - 1 - i) {
            *s *= g;
        }
    }
}

fn db(d: f32) -> f32 {
    10f32.powf(d / 20.0)
}

/// `x` read at a fractional index, linearly interpolated; silence outside.
fn at(x: &[f32], pos: f32) -> f32 {
    if pos < 0.0 {
        return 0.0;
    }
    let i = pos as usize;
    let f = pos - i as f32;
    let a = x.get(i).copied().unwrap_or(0.0);
    let b = x.get(i + 1).copied().unwrap_or(0.0);
    a + (b - a) * f
}

/// Plays `x` `rate` times faster: pitch and tempo both scale by `rate`.
fn resample(x: &[f32], rate: f32) -> Vec<f32> {
    let n = (x.len() as f32 / rate) as usize;
    (0..n).map(|i| at(x, i as f32 * rate)).collect()
}

/// Stretches or squeezes `x` to `out_len` samples without changing its pitch
/// (WSOLA: overlap-add of Hann-windowed frames, each taken from near where it
/// belongs in time, at the offset that best continues the previous frame's
/// waveform, so the result stays smooth enough to understand).
fn stretch(x: &[f32], out_len: usize) -> Vec<f32> {
    const FRAME: usize = 512;
    const HOP: usize = FRAME / 2;
    const SEARCH: usize = 96;
    if x.len() < 2 * FRAME + 2 * SEARCH || out_len < 2 * FRAME {
        return resample(x, x.len() as f32 / out_len.max(1) as f32);
    }
    let frames = (out_len - FRAME) / HOP + 1;
    let ha = (x.len() - FRAME - SEARCH) as f32 / (frames.max(2) - 1) as f32;
    let window: Vec<f32> = (0..FRAME)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / FRAME as f32).cos())
        .collect();
    let mut y = vec![0.0f32; (frames - 1) * HOP + FRAME];
    let mut prev = 0usize;
    for k in 0..frames {
        let nominal = (k as f32 * ha) as usize;
        let pos = if k == 0 {
            0
        } else {
            // The waveform that would naturally follow the previous frame.
            let want = x.get(prev + HOP..prev + 2 * HOP).unwrap_or(&[]);
            let lo = nominal.saturating_sub(SEARCH);
            let hi = (nominal + SEARCH).min(x.len() - FRAME);
            let mut best = (f32::MIN, nominal.min(x.len() - FRAME));
            for cand in (lo..=hi).step_by(3) {
                let got = x.get(cand..cand + HOP).unwrap_or(&[]);
                let c: f32 = want.iter().zip(got).step_by(4).map(|(a, b)| a * b).sum();
                if c > best.0 {
                    best = (c, cand);
                }
            }
            best.1
        };
        let src = x.get(pos..pos + FRAME).unwrap_or(&[]);
        if let Some(dst) = y.get_mut(k * HOP..k * HOP + FRAME) {
            for ((d, s), w) in dst.iter_mut().zip(src).zip(&window) {
                *d += s * w;
            }
        }
        prev = pos;
    }
    y.resize(out_len, 0.0);
    y
}

/// A rough change of timbre: `x[n] + c * x[n - k]` (a comb filter that moves
/// where the spectrum's peaks and dips are), and a random polarity.
fn colour<R: Rng>(x: &mut [f32], rng: &mut R) {
    let k = rng.gen_range(1..=7usize);
    let c = rng.gen_range(-0.5f32..0.5);
    let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    for i in (0..x.len()).rev() {
        let back = if i >= k {
            x.get(i - k).copied().unwrap_or(0.0)
        } else {
            0.0
        };
        if let Some(s) = x.get_mut(i) {
            *s = sign * (*s + c * back);
        }
    }
}

/// Adds `src * gain` into `dst` from `offset`, as far as `dst` reaches.
fn mix_into(dst: &mut [f32], offset: usize, src: &[f32], gain: f32) {
    if let Some(d) = dst.get_mut(offset..) {
        for (d, s) in d.iter_mut().zip(src) {
            *d += s * gain;
        }
    }
}

fn secs<R: Rng>(rng: &mut R, range: (f32, f32)) -> usize {
    (rng.gen_range(range.0..range.1) * RATE_F) as usize
}

/// One rendering before it is written out: the spoken digits and everything
/// else (babble and noise) kept apart, and where each digit is.
struct Mix {
    voice: Vec<f32>,
    interference: Vec<f32>,
    // Only the tests look at where the digits are.
    #[cfg_attr(not(test), allow(dead_code))]
    spans: Vec<std::ops::Range<usize>>,
}

/// Lays out and renders `digits` (each '1'-'9').
fn compose<R: Rng>(digits: &str, rng: &mut R) -> Option<Mix> {
    let clean = digit_recordings()?;
    let recording = |d: char| -> Option<&Vec<f32>> {
        let i = d.to_digit(10)?.checked_sub(1)?;
        clean.get(usize::try_from(i).ok()?)
    };

    // The spoken digits: each at its own pitch, stretched to a length drawn
    // from one range for every digit, with its own loudness and timbre.
    let mut spoken = Vec::new();
    for d in digits.chars() {
        let pitched = resample(recording(d)?, rng.gen_range(PITCH.0..PITCH.1));
        let mut v = stretch(&pitched, secs(rng, DIGIT_SECONDS));
        colour(&mut v, rng);
        let r = rms(&v).max(1e-6);
        let gain = rng.gen_range(0.6f32..1.0) * 0.1 / r;
        v.iter_mut().for_each(|s| *s *= gain);
        fade(&mut v, (RATE / 200) as usize);
        spoken.push(v);
    }

    let mut spans = Vec::new();
    let mut t = secs(rng, PAD_SECONDS);
    for (i, v) in spoken.iter().enumerate() {
        if i > 0 {
            t += secs(rng, GAP_SECONDS);
        }
        spans.push(t..t + v.len());
        t += v.len();
    }
    let len = t + secs(rng, PAD_SECONDS);
    let mut voice = vec![0.0f32; len];
    for (v, span) in spoken.iter().zip(&spans) {
        mix_into(&mut voice, span.start, v, 1.0);
    }
    // RMS of the digits where they are spoken; everything else is set against it.
    let spoken_len = spans.iter().map(|s| s.len()).sum::<usize>().max(1);
    let level = (voice.iter().map(|s| s * s).sum::<f32>() / spoken_len as f32)
        .sqrt()
        .max(1e-6);

    // Babble: other digits, never the one being spoken under them, either
    // played backwards or cut into syllable-sized pieces and shuffled, at
    // other pitches, in two overlapping streams that also fill the gaps (so
    // the quiet between digits doesn't mark where they are).
    let mut interference = vec![0.0f32; len];
    let spoken_at = |from: usize, to: usize| -> Vec<char> {
        digits
            .chars()
            .zip(&spans)
            .filter(|(_, s)| s.start < to && from < s.end)
            .map(|(d, _)| d)
            .collect()
    };
    for stream in 0..2 {
        let mut pos = rng.gen_range(0..(RATE as usize / 2));
        while pos < len {
            let piece = if stream == 0 {
                let d = other_digit(rng, &spoken_at(pos, pos + RATE as usize));
                let mut p = resample(recording(d)?, rng.gen_range(0.75f32..1.35));
                p.reverse();
                p
            } else {
                chopped(rng, clean, &spoken_at(pos, pos + RATE as usize))
            };
            let r = rms(&piece).max(1e-6);
            let gain = level * db(rng.gen_range(BABBLE_DB.0..BABBLE_DB.1)) / r;
            mix_into(&mut interference, pos, &piece, gain);
            pos += piece.len().max(1) * rng.gen_range(6..10) / 10;
        }
    }

    // Shaped noise: white through a random one-pole low-pass (more rumble
    // than hiss, like a room), with a slowly wandering level.
    let noise_gain = level * db(rng.gen_range(NOISE_DB.0..NOISE_DB.1));
    let a = rng.gen_range(0.80f32..0.95);
    let (mut lp, mut env, mut env_to) = (0.0f32, 1.0f32, 1.0f32);
    // Drawn in one go: much cheaper than one call per sample.
    let mut white = vec![0i32; len];
    rng.fill(&mut white[..]);
    for (i, (s, w)) in interference.iter_mut().zip(&white).enumerate() {
        if i % 2205 == 0 {
            env_to = rng.gen_range(0.5f32..1.5);
        }
        env += (env_to - env) * 0.001;
        let w = *w as f32 / 2_147_483_648.0;
        lp = a * lp + (1.0 - a) * w;
        // The low-pass output scaled back to the white noise's power, a
        // little hiss on top, the sum scaled to about unit RMS.
        *s += noise_gain * env * (lp * ((1.0 + a) / (1.0 - a)).sqrt() * 0.9 + 0.3 * w) * 1.83;
    }
    Some(Mix {
        voice,
        interference,
        spans,
    })
}

/// A digit 1-9 other than those in `avoid` (any digit if all are avoided).
fn other_digit<R: Rng>(rng: &mut R, avoid: &[char]) -> char {
    let choices: Vec<char> = ('1'..='9').filter(|d| !avoid.contains(d)).collect();
    choices
        .choose(rng)
        .copied()
        .unwrap_or_else(|| char::from(b'0' + rng.gen_range(1..10u8)))
}

/// About a second of syllable-sized pieces (60-150 ms) of random digits
/// other than those in `avoid`, each at its own pitch, overlapped: speech-like
/// sound that isn't any digit.
fn chopped<R: Rng>(rng: &mut R, clean: &[Vec<f32>; 9], avoid: &[char]) -> Vec<f32> {
    let mut out = vec![0.0f32; RATE as usize];
    let mut t = 0usize;
    while t < out.len() {
        let d = other_digit(rng, avoid);
        let Some(rec) = d
            .to_digit(10)
            .and_then(|i| clean.get(usize::try_from(i).ok()?.checked_sub(1)?))
        else {
            break;
        };
        let n = secs(rng, (0.06, 0.15));
        let from = rng.gen_range(0..rec.len().saturating_sub(n).max(1));
        let rate = rng.gen_range(0.75f32..1.35);
        let want = ((n as f32 * rate) as usize + 2).min(rec.len() - from.min(rec.len()));
        let mut p = resample(rec.get(from..from + want).unwrap_or(&[]), rate);
        p.truncate(n);
        if rng.gen_bool(0.5) {
            p.reverse();
        }
        fade(&mut p, n / 4);
        mix_into(&mut out, t, &p, 1.0);
        t += n * 3 / 4;
    }
    out
}

/// The WAV of the spoken `digits` (each '1'-'9'), different every time.
pub fn render_wav(digits: &str) -> Option<Vec<u8>> {
    let mut rng = StdRng::from_rng(OsRng).ok()?;
    encode(&compose(digits, &mut rng)?)
}

/// 16-bit mono WAV of the mix, peak-normalised (so loudness says nothing).
fn encode(m: &Mix) -> Option<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let peak = m
        .voice
        .iter()
        .zip(&m.interference)
        .map(|(v, n)| (v + n).abs())
        .fold(1e-6f32, f32::max);
    let scale = 0.9 * f32::from(i16::MAX) / peak;
    let mut out = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).ok()?;
        for (v, n) in m.voice.iter().zip(&m.interference) {
            let s = ((v + n) * scale).clamp(f32::from(i16::MIN), f32::from(i16::MAX));
            w.write_sample(s as i16).ok()?;
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
        assert_eq!(r.spec().sample_rate, RATE);
        assert_eq!(r.spec().channels, 1);
        let secs = r.duration() as f32 / RATE_F;
        assert!(
            (5.0..15.0).contains(&secs),
            "seven digits with pauses, not too long: {secs} s"
        );
        assert!(render_wav("12a").is_none(), "only digits 1-9");
    }

    fn samples(wav: &[u8]) -> Vec<f32> {
        hound::WavReader::new(wav)
            .unwrap()
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect()
    }

    fn seeded(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    /// |Pearson correlation| of two equally long signals.
    fn ncc(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) as f32;
        let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x - ma, y - mb);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        (ab / (aa * bb).sqrt().max(1e-12)).abs()
    }

    #[test]
    fn two_renderings_differ_substantially() {
        let a = samples(&render_wav("1234567").unwrap());
        let b = samples(&render_wav("1234567").unwrap());
        assert_ne!(a.len(), b.len(), "lengths are random too");
        // Not a shifted copy either: the best match within +-0.25 s is poor.
        let n = a.len().min(b.len()) - RATE as usize;
        let best = (0..RATE as usize / 2)
            .step_by(7)
            .map(|lag| {
                ncc(
                    &a[lag..lag + n / 2],
                    &b[RATE as usize / 4..RATE as usize / 4 + n / 2],
                )
            })
            .fold(0.0f32, f32::max);
        assert!(best < 0.2, "renderings correlate at {best}");
    }

    #[test]
    fn length_says_nothing_about_the_digits() {
        // '8' has the shortest recording and '7' the longest.
        let clean = digit_recordings().unwrap();
        assert!(clean[6].len() > clean[7].len() + RATE as usize / 10);
        let (mut sevens, mut eights) = (Vec::new(), Vec::new());
        let (mut span7, mut span8) = (Vec::new(), Vec::new());
        let mut rng = seeded(7);
        for _ in 0..12 {
            let m = compose("7777777", &mut rng).unwrap();
            sevens.push(m.voice.len() as f32);
            span7.extend(m.spans.iter().map(|s| s.len() as f32));
            let m = compose("8888888", &mut rng).unwrap();
            eights.push(m.voice.len() as f32);
            span8.extend(m.spans.iter().map(|s| s.len() as f32));
        }
        let range = |v: &[f32]| {
            (
                v.iter().copied().fold(f32::MAX, f32::min),
                v.iter().copied().fold(f32::MIN, f32::max),
            )
        };
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        // Every digit, whichever it is, lasts a length drawn from one range.
        for (lo, hi) in [range(&span7), range(&span8)] {
            assert!(lo >= DIGIT_SECONDS.0 * RATE_F - 1.0 && hi <= DIGIT_SECONDS.1 * RATE_F);
            assert!(hi - lo > 0.15 * RATE_F, "no fixed per-digit length");
        }
        assert!((mean(&span7) - mean(&span8)).abs() < 0.05 * RATE_F);
        // Total lengths of the two strings overlap rather than separate.
        let ((lo7, hi7), (lo8, hi8)) = (range(&sevens), range(&eights));
        assert!(lo7 < hi8 && lo8 < hi7, "7s {lo7}..{hi7}, 8s {lo8}..{hi8}");
        assert!((mean(&sevens) - mean(&eights)).abs() < 0.5 * RATE_F);
    }

    #[test]
    fn digits_stay_audible_over_babble_and_noise() {
        let mut rng = seeded(3);
        for _ in 0..5 {
            let m = compose("9182736", &mut rng).unwrap();
            for span in &m.spans {
                let signal = rms(&m.voice[span.clone()]);
                let rest = rms(&m.interference[span.clone()]);
                let snr = 20.0 * (signal / rest).log10();
                assert!(snr > 3.0, "digit {snr:.1} dB over babble and noise");
            }
            // Not silent, not clipped.
            let wav = encode(&m).unwrap();
            let s = samples(&wav);
            let peak = s.iter().fold(0.0f32, |a, b| a.max(b.abs()));
            assert!((0.5..0.95).contains(&peak), "peak {peak}");
            let inside: f32 = m.spans.iter().map(|r| rms(&s[r.clone()])).sum::<f32>() / 7.0;
            assert!(inside > 0.05, "digits are loud enough: {inside}");
        }
    }

    // --- A naive attacker, as for the old audio: it has the public
    // recordings and matches them against the challenge. ---

    const FRAME: usize = 220; // 10 ms

    fn envelope(x: &[f32], frame: usize) -> Vec<f32> {
        x.chunks(frame)
            .map(|c| c.iter().map(|s| s.abs()).sum::<f32>() / c.len() as f32)
            .collect()
    }

    /// Pre-emphasis (first difference): drops the rumble that would
    /// otherwise dominate a correlation.
    fn emphasis(x: &[f32]) -> Vec<f32> {
        std::iter::once(0.0)
            .chain(x.windows(2).map(|w| w[1] - 0.95 * w[0]))
            .collect()
    }

    fn decimate(x: &[f32], k: usize) -> Vec<f32> {
        x.chunks(k)
            .map(|c| c.iter().sum::<f32>() / k as f32)
            .collect()
    }

    /// Seven loud stretches found by energy: the lowest threshold that gives
    /// exactly seven (after joining short dips and dropping blips).
    fn segment(x: &[f32]) -> Option<Vec<std::ops::Range<usize>>> {
        let e = envelope(x, FRAME);
        let mut sorted = e.clone();
        sorted.sort_by(f32::total_cmp);
        for q in 10..99 {
            let th = sorted[sorted.len() * q / 100];
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for (i, v) in e.iter().enumerate() {
                if *v > th {
                    match runs.last_mut() {
                        Some(r) if i - r.1 <= 10 => r.1 = i,
                        _ => runs.push((i, i)),
                    }
                }
            }
            runs.retain(|r| r.1 - r.0 >= 15);
            if runs.len() == 7 {
                return Some(
                    runs.iter()
                        .map(|r| r.0 * FRAME..(r.1 + 1) * FRAME)
                        .collect(),
                );
            }
        }
        None
    }

    /// The digit whose recording best matches `x` around `span`: aligned by
    /// envelope, then scored by waveform correlation (sign ignored).
    fn classify(x: &[f32], span: &std::ops::Range<usize>, clean: &[Vec<f32>; 9]) -> char {
        const ENV: usize = 55;
        const DEC: usize = 4;
        let from = span.start.saturating_sub(RATE as usize / 4);
        let to = (span.end.max(span.start + RATE as usize) + RATE as usize / 4).min(x.len());
        let region = &emphasis(&x[from..to]);
        let env = envelope(region, ENV);
        let dec = decimate(region, DEC);
        let mut best = (0.0f32, '?');
        for (i, rec) in clean.iter().enumerate() {
            let rec = &emphasis(rec);
            let tenv = envelope(rec, ENV);
            let n = tenv.len().min(env.len());
            let lag = (0..=env.len() - n)
                .max_by(|a, b| {
                    ncc(&tenv[..n], &env[*a..*a + n]).total_cmp(&ncc(&tenv[..n], &env[*b..*b + n]))
                })
                .unwrap_or(0);
            let t = decimate(rec, DEC);
            let m = t.len().min(dec.len());
            let centre = lag * ENV / DEC;
            let score = (centre.saturating_sub(30)..centre + 30)
                .filter(|l| l + m <= dec.len())
                .map(|l| ncc(&t[..m], &dec[l..l + m]))
                .fold(0.0f32, f32::max);
            if score > best.0 {
                best = (score, char::from(b'1' + i as u8));
            }
        }
        best.1
    }

    /// An answer, its audio, and maybe where the digits are.
    type Render = (String, Vec<f32>, Option<Vec<std::ops::Range<usize>>>);

    /// (challenges fully solved, digits right) over `renders`, segmenting
    /// by energy or, if given, with the true digit positions. Against the
    /// previous audio (raw recordings plus white noise) this solved 9 of 20
    /// challenges and 99 of 140 digits.
    fn attack(renders: &[Render]) -> (usize, usize) {
        let clean = digit_recordings().unwrap();
        let (mut solved, mut digits) = (0, 0);
        for (answer, x, spans) in renders {
            let Some(spans) = spans.clone().or_else(|| segment(x)) else {
                continue;
            };
            let guess: String = spans.iter().map(|s| classify(x, s, clean)).collect();
            digits += guess
                .chars()
                .zip(answer.chars())
                .filter(|(a, b)| a == b)
                .count();
            solved += usize::from(guess == *answer);
        }
        (solved, digits)
    }

    fn random_answer(rng: &mut StdRng) -> String {
        (0..AUDIO_DIGITS)
            .map(|_| char::from(b'0' + rng.gen_range(1..10u8)))
            .collect()
    }

    #[test]
    fn a_naive_template_matcher_fails() {
        let mut rng = seeded(11);
        let mut blind = Vec::new();
        let mut told = Vec::new();
        for _ in 0..20 {
            let answer = random_answer(&mut rng);
            let m = compose(&answer, &mut rng).unwrap();
            let x = samples(&encode(&m).unwrap());
            blind.push((answer.clone(), x.clone(), None));
            told.push((answer, x, Some(m.spans)));
        }
        let (solved, digits) = attack(&blind);
        println!("segmenting by energy: {solved}/20 solved, {digits}/140 digits");
        assert!(
            solved < 2 && digits < 140 / 3,
            "{solved} solved, {digits} digits"
        );
        // Even told exactly where each digit is, it mostly guesses wrong.
        let (solved, digits) = attack(&told);
        println!("told the positions: {solved}/20 solved, {digits}/140 digits");
        assert!(
            solved < 2 && digits < 140 / 2,
            "{solved} solved, {digits} digits"
        );
    }

    #[test]
    fn stored_json_round_trips() {
        let s = Stored {
            image: "ab\"c".into(),
            audio: "123".into(),
            pre: "p\u{e9}".into(),
        };
        assert_eq!(serde_json::from_slice::<Stored>(&s.to_json()).unwrap(), s);
    }

    #[tokio::test]
    async fn challenges_expire() {
        let clock = crate::clock::FakeClock::at(1_000);
        let c = Captchas::new(
            Arc::new(crate::store::memory::MemoryStore::with_clock(
                Arc::new(clock.clone()),
                100,
            )),
            Duration::from_millis(300),
        );
        let id = c.create("pre1").await.unwrap();
        let (image, _) = c.answers_for_tests(&id).await.unwrap().unwrap();
        clock.advance_by(Duration::from_millis(500));
        assert!(c.png(&id, "pre1").await.unwrap().is_none());
        assert!(
            !c.solve(&id, "pre1", &image).await.unwrap(),
            "an expired challenge is not accepted"
        );
    }

    /// A challenge's picture is drawn at most `MAX_SHOWN` times and its sound played at
    /// most `MAX_PLAYED` times; a foreign pre-session gets neither and uses up nothing.
    #[tokio::test]
    async fn a_challenge_is_shown_a_few_times_only() {
        let c = Captchas::new(
            Arc::new(crate::store::memory::MemoryStore::new()),
            Duration::from_secs(60),
        );
        let id = c.create("pre1").await.unwrap();
        assert!(c.png(&id, "pre2").await.unwrap().is_none());
        for _ in 0..MAX_SHOWN {
            assert!(c.png(&id, "pre1").await.unwrap().is_some());
        }
        assert!(c.png(&id, "pre1").await.unwrap().is_none());
        for _ in 0..MAX_PLAYED {
            assert!(c.wav(&id, "pre1").await.unwrap().is_some());
        }
        assert!(c.wav(&id, "pre1").await.unwrap().is_none());
        // Still answerable: the bound is on renderings, not on the challenge.
        let (image, _) = c.answers_for_tests(&id).await.unwrap().unwrap();
        assert!(c.solve(&id, "pre1", &image).await.unwrap());
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
