//! Mail policies: the encryption rule (spec §7), Secure-Join and ASM exemptions, header scrubbing.
