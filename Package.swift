// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dsar",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dsar", targets: ["dsar"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Live databases: the client libraries DBAs already configure (libpq, MariaDB Connector/C, SQLite).
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "CShims"),
        .target(
            name: "DSARCore",
            dependencies: [
                "CShims",
                "CArchive",
                "CZlib",
                "CLibPQ",
                "CMariaDB",
                "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                // KDF.Scrypt for age passphrase (scrypt) recipients.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            // The subject report's built-in templates, embedded (PackageResources.<name>): an installed
            // dsar needs nothing beside it.
            resources: [
                .embedInCode("Bundle/Templates/en/en-index.html.mustache"),
                .embedInCode("Bundle/Templates/en/en-page.html.mustache"),
                .embedInCode("Bundle/Templates/en/en-README.txt.mustache"),
                .embedInCode("Bundle/Templates/de/de-index.html.mustache"),
                .embedInCode("Bundle/Templates/de/de-page.html.mustache"),
                .embedInCode("Bundle/Templates/de/de-README.txt.mustache"),
            ]
        ),
        .executableTarget(
            name: "dsar",
            dependencies: [
                "DSARCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Embedded in the binary (PackageResources.<name>): an installed dsar needs no bundle beside it.
            resources: [
                .embedInCode("Resources/deploy/crontab"), .embedInCode("Resources/deploy/dsar-nightly.service"),
                .embedInCode("Resources/deploy/dsar-nightly.timer"),
                .embedInCode("Resources/deploy/dsar-watch.service"),
                .embedInCode("Resources/deploy/setup.sh"), .embedInCode("Resources/deploy/sshd_config.d-dsar.conf"),
                .embedInCode("Resources/deploy/witness-syslog.sh"), .embedInCode("Resources/deploy/hardening.inc"),
            ]
        ),
        .target(
            name: "DSARTestSupport",
            dependencies: ["DSARCore"],
            path: "Tests/DSARTestSupport"
        ),
        .testTarget(
            name: "DSARCoreTests",
            dependencies: ["DSARCore", "DSARTestSupport"]
        ),
        .testTarget(
            name: "DSARE2ETests",
            dependencies: ["DSARCore", "DSARTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
