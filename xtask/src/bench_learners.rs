//! `cargo xtask bench learners`: placeholder until the benchmark lands.

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("the learner benchmark is not written yet".into())
}
