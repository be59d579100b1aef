//! `[password]`: rules for new passwords and argon2id's parameters.

use super::Problems;
use crate::config::defaults::password as d;
use crate::config::raw::RawPassword;
use crate::config::PasswordConfig;

pub fn validate(p: &RawPassword, v: &mut Problems<'_>) -> PasswordConfig {
    let min_length = v.int("password.min_length", p.min_length, d::MIN_LENGTH, 1, 1024) as usize;
    let single = v.int(
        "password.min_length_single_factor",
        p.min_length_single_factor,
        d::MIN_LENGTH_SINGLE_FACTOR,
        1,
        1024,
    ) as usize;
    PasswordConfig {
        min_length,
        min_length_single_factor: single.max(min_length),
        min_strength: v.int(
            "password.min_strength",
            p.min_strength,
            d::MIN_STRENGTH,
            0,
            4,
        ) as u8,
        argon2: crate::auth::password::HashParams {
            memory_kib: v.int(
                "password.argon2_memory_kib",
                p.argon2_memory_kib,
                d::ARGON2_MEMORY_KIB,
                8,
                4 * 1024 * 1024,
            ) as u32,
            iterations: v.int(
                "password.argon2_iterations",
                p.argon2_iterations,
                d::ARGON2_ITERATIONS,
                1,
                100,
            ) as u32,
            parallelism: v.int(
                "password.argon2_parallelism",
                p.argon2_parallelism,
                d::ARGON2_PARALLELISM,
                1,
                16,
            ) as u32,
        },
        max_concurrent_hashes: v.int(
            "password.max_concurrent_hashes",
            p.max_concurrent_hashes,
            d::MAX_CONCURRENT_HASHES,
            1,
            256,
        ) as usize,
    }
}
