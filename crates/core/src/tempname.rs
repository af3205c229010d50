//! Temp-file names `<target>~<random>` beside the target. CONTRACT (implementation pending).
