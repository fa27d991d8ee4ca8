import CArchive
import CZlib

package enum DSARVersion { package static let string = "0.1.0" }
