import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The pty driver: age reads a passphrase from the terminal (/dev/tty) only, never from stdin, so
/// the tool runs on a pseudo-terminal and every "…passphrase…: " prompt is answered with the
/// passphrase read from this script's stdin. Exits with the tool's status (124 on a 120 s timeout);
/// what the tool wrote to the terminal goes to stderr.
private let ptyDriver = #"""
    import os, pty, select, signal, sys, time
    secret = sys.stdin.buffer.readline().rstrip(b"\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    seen = b""
    answered = 0
    deadline = time.time() + 120
    while True:
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sys.stderr.buffer.write(seen)
            sys.exit(124)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
        prompts = seen.lower().count(b"passphrase")
        if prompts > answered and seen.rstrip(b" ").endswith(b":"):
            os.write(fd, secret + b"\r")
            answered = prompts
    _, status = os.waitpid(pid, 0)
    sys.stderr.buffer.write(seen)
    sys.exit(os.waitstatus_to_exitcode(status))
    """#

/// Runs `tool args…` (found on PATH) on a pseudo-terminal, typing `passphrase` at each passphrase
/// prompt, as a person would: how tests drive `age -p` and `age -d` of passphrase files, which read
/// the passphrase from the terminal only. Returns the exit status and what the tool showed on the
/// terminal. The passphrase reaches the driver on its stdin, never in argv.
package func runWithPassphrase(
    _ tool: String, _ args: [String], passphrase: String
) throws -> (
    status: Int32, terminal: String
) {
    let base = NSTemporaryDirectory() + "dsar-pty-\(UUID().uuidString)"
    let script = base + ".py"
    try Data(ptyDriver.utf8).write(to: URL(fileURLWithPath: script))
    try Data((passphrase + "\n").utf8).write(to: URL(fileURLWithPath: base + ".in"))
    chmod(base + ".in", 0o600)
    defer {
        unlink(script)
        unlink(base + ".in")
    }
    let r = try runTool("python3", [script, tool] + args, stdinPath: base + ".in")
    return (r.status, r.stderr)
}
