import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The streaming writers against a real full device: `/dev/full` fails every write with ENOSPC.
/// After the first failure a writer throws that error for every later call and writes nothing more
/// (not even when it is released: no deflate, no flush in `deinit`).
final class DiskFullWriterTests: XCTestCase {
    func openDevice(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw XCTSkip("\(path) is not available here") }
        return fd
    }

    func randomBytes(_ n: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<n).map { _ in rng.next() }
    }

    final class Counter {
        var written = 0
        var failed = false
        var callsAfterFailure = 0
    }

    /// ZIP → age → a descriptor that accepts the first 100 KB (`/dev/null`), then is full.
    func testZipIntoAgeStopsAtTheFirstENOSPCAndNeverWritesAgain() throws {
        let null = try openDevice("/dev/null")
        defer { close(null) }
        let full = try openDevice("/dev/full")
        defer { close(full) }
        let c = Counter()
        let sink: ([UInt8]) throws -> Void = { chunk in
            if c.failed { c.callsAfterFailure += 1 }
            let fd = c.written < 100_000 ? null : full
            do {
                try chunk.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: "/dev/full") }
            } catch {
                c.failed = true
                throw error
            }
            c.written += chunk.count
        }
        let encryptor = try AgeEncryptor(recipients: [AgeIdentity.generate().recipient], sink: sink)
        var zip: ZipStreamWriter? = try ZipStreamWriter(mtime: Date()) { try encryptor.write($0) }
        // Released right after the call: libarchive must not read it again (the old deinit did).
        XCTAssertThrowsError(try zip!.add("data/records.json", bytes: randomBytes(1 << 20))) { e in
            XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)")
            XCTAssertTrue("\(e)".contains("No space left on device"), "\(e)")
        }
        XCTAssertTrue(zip!.failed)
        XCTAssertTrue(c.failed)
        // Every later call throws the same error, without touching the sink.
        for attempt in [
            { try zip!.add("README.txt", bytes: Array("more".utf8)) },
            { try zip!.add("big.bin", size: 10) { emit in try emit([UInt8](repeating: 1, count: 10)) } },
            { try zip!.finish() },
            { try encryptor.write([1, 2, 3]) },
            { try encryptor.finish() },
        ] as [() throws -> Void] {
            XCTAssertThrowsError(try attempt()) { e in XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)") }
        }
        zip = nil
        XCTAssertEqual(c.callsAfterFailure, 0, "the sink was called after it failed")
    }

    /// A writer dropped mid-entry without a failure is released without finishing the entry.
    func testZipReleasedMidEntryWritesNothingMore() throws {
        let c = Counter()
        var zip: ZipStreamWriter? = try ZipStreamWriter(mtime: Date()) { chunk in c.written += chunk.count }
        struct Stop: Error {}
        XCTAssertThrowsError(
            try zip!.add("half.bin", size: 1 << 20) { emit in
                try emit(self.randomBytes(300_000))
                throw Stop()
            })
        XCTAssertTrue(zip!.failed)
        let before = c.written
        zip = nil
        XCTAssertEqual(c.written, before, "releasing a failed archive wrote \(c.written - before) more bytes")
    }

    func testGzipWriterOnAFullDeviceFailsAndStaysFailed() throws {
        let full = try openDevice("/dev/full")
        defer { close(full) }
        var gz: GzipWriter? = try GzipWriter(fd: full, path: "/dev/full")
        XCTAssertThrowsError(try gz!.write(randomBytes(1 << 20))) { e in
            XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)")
            XCTAssertEqual((e as? DSARError)?.path, "/dev/full")
        }
        XCTAssertThrowsError(try gz!.write([1, 2, 3])) { e in XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)") }
        XCTAssertThrowsError(try gz!.finish()) { e in XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)") }
        gz = nil
    }

    /// `AgeEncryptor.encrypt(file:)` to a full device: an error, and no temp file left beside the output.
    func testAgeFileEncryptionToAFullDirectoryLeavesNoTempFile() throws {
        let dir = NSTemporaryDirectory() + "dsar-agefull-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileSystem.removeTree(dir) }
        let input = dir + "/in.bin"
        try FileSystem.writeAtomically(input, randomBytes(200_000))
        // The output goes to a 64 KiB tmpfs: the temp file beside it fills the file system.
        let mnt = dir + "/tiny"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let m = try runTool("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt])
        guard m.status == 0 else {
            throw XCTSkip("cannot mount a tmpfs on \(mnt) (needs root / CAP_SYS_ADMIN): \(m.stderr)")
        }
        defer { _ = try? runTool("umount", [mnt]) }
        XCTAssertThrowsError(
            try AgeEncryptor.encrypt(file: input, recipients: [AgeIdentity.generate().recipient], to: mnt + "/out.age")
        ) { e in XCTAssertEqual((e as? DSARError)?.errno, ENOSPC, "\(e)") }
        XCTAssertEqual(try FileSystem.list(mnt), [])
    }
}
