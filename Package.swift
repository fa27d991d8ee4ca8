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
        // 3.x or 4.x: jwt-kit 5.7 needs swift-crypto 4.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        // dsar serve (issue 17): the HTTP API over the same spool, with graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Already in Hummingbird's graph; named for the server's channel handler (header timeout) and
        // the thread pool its file work runs on.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        // dsar serve: bearer JWTs (RS256/ES256/EdDSA) against a JWKS file or configured keys.
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
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
                // The PySpark program of `type: spark` connectors (PackageResources.dsar_spark_job_py).
                .embedInCode("Connectors/Spark/dsar_spark_job.py"),
            ]
        ),
        // dsar serve: every HTTP concern (routes, auth, limits, problem documents). DSARCore stays free of
        // Hummingbird; the server only calls into it.
        .target(
            name: "DSARServer",
            dependencies: [
                "DSARCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            // The OpenAPI description (`dsar serve --print-openapi`), embedded: PackageResources.openapi_yaml.
            resources: [.embedInCode("Resources/openapi.yaml")]
        ),
        .executableTarget(
            name: "dsar",
            dependencies: [
                "DSARCore",
                "DSARServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Embedded in the binary (PackageResources.<name>): an installed dsar needs no bundle beside it.
            resources: [
                .embedInCode("Resources/deploy/crontab"), .embedInCode("Resources/deploy/dsar-nightly.service"),
                .embedInCode("Resources/deploy/dsar-nightly.timer"),
                .embedInCode("Resources/deploy/dsar-watch.service"),
                .embedInCode("Resources/deploy/dsar-serve.service"),
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
            dependencies: [
                "DSARCore", "DSARTestSupport",
                // Minting test JWTs (Ed25519, P-256) independently of jwt-kit.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
