import CArchive
import CZlib
public enum DSARVersion { public static let string = "0.1.0" }
