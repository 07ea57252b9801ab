#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the memory of large, short-lived buffers (a 1 MB record, its ciphertext, SQLite's copy) in the
/// process for reuse instead of returning it to the kernel after each operation.
///
/// glibc serves a block above its mmap threshold (128 KiB at start) with a fresh `mmap` and returns it with
/// `munmap` on `free`, and trims freed heap above its trim threshold: every 1 MB record then touches
/// about 256 fresh pages per buffer, each a page fault. AES-GCM sealing through swift-crypto allocates two
/// such buffers (the ciphertext and the `nonce ‖ ciphertext ‖ tag` representation), so those faults, not
/// the cipher, were most of the encryption's cost (measured: seal of 1 MB ≈ 0.8–0.9 ms cold, ≈ 0.12 ms with
/// the memory kept). Raising both thresholds (blocks up to 4 MiB from the heap; up to 32 MiB of freed heap
/// kept) removes them. The settings are process-wide and only grow how much freed memory the process keeps;
/// no data is shared with anyone. Applied once, on glibc only.
enum LargeRecordAllocator {
    /// Whether the tuning was applied (the first access applies it).
    static let applied: Bool = {
        #if canImport(Glibc)
            // `mallopt` is in <malloc.h>, which the Glibc module does not import: look it up.
            typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(nil, "mallopt") else { return false }
            let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
            let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
            let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
            return mallopt(mmapThreshold, 4 << 20) == 1 && mallopt(trimThreshold, 32 << 20) == 1
        #else
            return false
        #endif
    }()
}
