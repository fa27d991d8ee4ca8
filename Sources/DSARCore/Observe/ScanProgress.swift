import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Bytes one connector's scan has read so far. The file readers find it as a task-local value and
/// add to it once per buffer refill (one relaxed atomic add per MiB, nothing per record).
package final class ProgressCounter: Sendable {
    /// The counter of the scan running in this task (nil: nobody is watching).
    @TaskLocal package static var current: ProgressCounter?

    private let bytes = Atomic<Int64>(0)

    package init() {}

    /// Adds `n` bytes read.
    package func add(_ n: Int) { bytes.add(Int64(n), ordering: .relaxed) }

    /// Bytes read so far.
    package var value: Int64 { bytes.load(ordering: .relaxed) }
}

/// Per-connector scan progress of a batch, drawn on stderr: on a terminal as lines redrawn in place,
/// otherwise (only when asked for) as plain lines every few seconds.
///
/// ```
/// scan  web-logs       131.0 MiB / 200.0 MiB   65%   48.2 MiB/s   0:02
/// done  shop-db         80.0 MiB in 1.9 s       42.1 MiB/s
/// ```
package final class ScanProgress: Sendable {
    struct Entry: Sendable {
        var name: String
        var total: Int64?
        var counter = ProgressCounter()
        var started: Date?
        var finished: Date?
        var failed = false
    }

    let terminal: Bool
    let showAfter: Double
    let interval: Double
    let output: Int32
    let state = Mutex<(entries: [Entry], drawnLines: Int, round: Int)>(([], 0, 0))

    /// `terminal`: redraw in place with ANSI escapes; `showAfter`: seconds a scan runs before the first
    /// draw (short batches print nothing); `interval`: seconds between draws.
    package init(terminal: Bool, showAfter: Double = 1.0, interval: Double? = nil, output: Int32 = 2) {
        self.terminal = terminal
        self.showAfter = showAfter
        self.interval = interval ?? (terminal ? 0.25 : 5)
        self.output = output
    }

    /// Runs `body` (one scan round over `connectors`) while drawing its progress.
    package func track<T: Sendable>(_ connectors: [any Connector], round: Int, _ body: () async -> T) async -> T {
        let entries = connectors.map { Entry(name: $0.name, total: $0.sourceBytes()) }
        state.withLock { $0 = (entries, 0, round) }
        let start = Date()
        let drawer = Task { [self] in
            // Off a terminal, lines are only worth printing for a scan that takes a while.
            let first = terminal ? showAfter : max(showAfter, interval)
            if first > 0 { try? await Task.sleep(nanoseconds: UInt64(first * 1e9)) }
            while !Task.isCancelled {
                draw(now: Date())
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
        let result = await body()
        drawer.cancel()
        _ = await drawer.result
        // A batch that drew anything (or is always shown) ends with its final state.
        let drawn = state.withLock { $0.drawnLines }
        if drawn > 0 || (showAfter <= 0) || Date().timeIntervalSince(start) >= showAfter { draw(now: Date()) }
        return result
    }

    /// The counter the connector named `name` adds to (nil when it is not part of the round).
    package func counter(_ name: String) -> ProgressCounter? {
        state.withLock { s in s.entries.first { $0.name == name }?.counter }
    }

    /// Marks a connector's scan as started.
    package func started(_ name: String) {
        state.withLock { s in
            if let k = s.entries.firstIndex(where: { $0.name == name }) { s.entries[k].started = Date() }
        }
    }

    /// Marks a connector's scan as ended.
    package func finished(_ name: String, failed: Bool) {
        state.withLock { s in
            if let k = s.entries.firstIndex(where: { $0.name == name }) {
                s.entries[k].finished = Date()
                s.entries[k].failed = failed
            }
        }
    }

    /// A byte count in the largest unit that keeps it readable.
    static func size(_ b: Int64) -> String {
        let d = Double(b)
        if b < 1024 { return "\(b) B" }
        if b < 1 << 20 { return String(format: "%.1f KiB", d / 1024) }
        if b < 1 << 30 { return String(format: "%.1f MiB", d / 1_048_576) }
        return String(format: "%.2f GiB", d / 1_073_741_824)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s)
        return t >= 3600
            ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// One line per connector.
    func lines(now: Date) -> [String] {
        let (entries, round) = state.withLock { ($0.entries, $0.round) }
        let width = min(24, entries.map(\.name.count).max() ?? 8)
        return entries.map { e in
            let name = e.name.padding(toLength: max(width, e.name.count), withPad: " ", startingAt: 0)
            let done = e.counter.value
            let tag = round > 1 ? " (round \(round))" : ""
            guard let started = e.started else { return "wait  \(name)" + tag }
            let elapsed = (e.finished ?? now).timeIntervalSince(started)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let rateText = String(format: "%.1f MiB/s", rate / 1_048_576)
            if e.finished != nil {
                let verb = e.failed ? "FAIL" : "done"
                if done == 0 && e.total == nil {
                    return "\(verb)  \(name)  in \(String(format: "%.1f", elapsed)) s" + tag
                }
                return
                    "\(verb)  \(name)  \(ScanProgress.size(done)) in \(String(format: "%.1f", elapsed)) s  \(rateText)"
                    + tag
            }
            guard let total = e.total, total > 0 else {
                return
                    "scan  \(name)  \(done > 0 ? ScanProgress.size(done) + "  " + rateText + "  " : "")\(ScanProgress.clock(elapsed))"
                    + tag
            }
            let pct = min(100, Int(Double(done) * 100 / Double(total)))
            return
                "scan  \(name)  \(ScanProgress.size(done)) / \(ScanProgress.size(total))  \(pct)%  \(rateText)  \(ScanProgress.clock(elapsed))"
                + tag
        }
    }

    func draw(now: Date) {
        let lines = self.lines(now: now)
        var text = ""
        state.withLock { s in
            if terminal {
                if s.drawnLines > 0 { text += "\u{1B}[\(s.drawnLines)A" }
                for l in lines { text += "\r\u{1B}[2K" + l + "\n" }
                s.drawnLines = lines.count
            } else {
                for l in lines { text += "progress: " + l + "\n" }
                s.drawnLines = lines.count
            }
        }
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = write(output, p.baseAddress! + off, p.count - off)
                if n <= 0 { if errno == EINTR { continue } else { break } }
                off += n
            }
        }
    }
}
