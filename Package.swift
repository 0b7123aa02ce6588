// swift-tools-version: 6.0
import PackageDescription

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "ThinBackup",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "thin-backup", targets: ["ThinBackup"]),
        .library(name: "PoolCore", targets: ["PoolCore"]),
        .library(name: "Delta", targets: ["Delta"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian (libzstd-dev, libcurl4-openssl-dev, libsodium-dev, libdevmapper-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libcurl's header only: CCurlShim loads libcurl.so.4 on first use (dlopen), so a command that
        // never talks HTTP does not load it and the ~30 libraries it links (process start, docs/BENCHMARKS.md).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // libsodium-dev: XChaCha20-Poly1305, BLAKE2b, Argon2id and randombytes for encrypted streams.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // libdevmapper's header only: CDevMapperShim loads libdevmapper.so.1.02.1 on first use (dlopen),
        // so a command that never touches a kernel pool does not load it and libudev, libselinux, libpcre2.
        .systemLibrary(name: "CDevMapper", providers: [.apt(["libdevmapper-dev"])]),
        // Small C shims: _GNU_SOURCE constants/calls and hardware CRC-32C (CSys); typed curl_easy_setopt wrappers (CCurlShim).
        .target(name: "CSys"),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // libdevmapper's ioctls in the few shapes the kernel pools need (tables, messages, suspend).
        .target(name: "CDevMapperShim", dependencies: ["CDevMapper"]),

        .target(name: "PoolCore", dependencies: ["CSys"]),
        // How serve reads a request head (apart, so Fuzz/FuzzHTTP can fuzz it with NIO's parser).
        .target(name: "ReceiverRequest", dependencies: [.product(name: "NIOHTTP1", package: "swift-nio")]),
        .target(name: "Delta", dependencies: ["PoolCore", "CZstd", "CSodium"]),
        .target(
            name: "ThinBackupKit",
            dependencies: [
                "PoolCore", "Delta", "ReceiverRequest", "CCurl", "CCurlShim", "CSys", "CDevMapperShim", argumentParser,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // --no-export-dynamic: Swift's static-stdlib link line exports every symbol of the package's
        // object files (28,900 dynamic symbols), which the loader's symbol lookups and the runtime's
        // dladdr (its backtracer's start-up) then scan on every process start; nothing loads symbols
        // from the executable by name. `--version` 4.1 -> 3.3 ms task-clock (docs/BENCHMARKS.md).
        //
        // The Swift toolchain's lld, for two more start-up savings (docs/BENCHMARKS.md, "Process start,
        // fifth pass"): `-z pack-relative-relocs` stores the executable's 107,677 relative relocations
        // as 21 KB of DT_RELR bitmaps instead of 2.6 MB of RELA entries the loader reads on every start
        // (needs glibc 2.36, Debian 12's); and libstdc++ linked statically, through the linker script
        // Sources/ThinBackup/link/libstdc++.so (`INPUT(-l:libstdc++.a)`), which the -L below puts ahead
        // of the compiler's own libstdc++.so, so that the loader neither maps nor relocates the shared
        // one. zstd, sodium and sqlite3 stay shared, so that Debian's security updates reach them.
        .executableTarget(
            name: "ThinBackup", dependencies: ["ThinBackupKit", argumentParser],
            exclude: ["link"],
            linkerSettings: [.unsafeFlags([
                "-Xlinker", "--no-export-dynamic",
                "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                "-L", Context.packageDirectory + "/Sources/ThinBackup/link",
            ], .when(platforms: [.linux]))]
        ),

        // libFuzzer targets (scripts/fuzz.sh builds them with -sanitize=fuzzer; docs/RELIABILITY.md).
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .executableTarget(name: "FuzzStream", dependencies: ["Delta", "PoolCore", "CFuzzDriver"], path: "Fuzz/FuzzStream"),
        .executableTarget(name: "FuzzMetadata", dependencies: ["PoolCore", "CFuzzDriver"], path: "Fuzz/FuzzMetadata"),
        .executableTarget(name: "FuzzHTTP", dependencies: [
            "ReceiverRequest", "CFuzzDriver",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ], path: "Fuzz/FuzzHTTP"),

        .target(name: "TestSupport", dependencies: ["PoolCore"], path: "Tests/TestSupport"),
        .testTarget(name: "PoolCoreTests", dependencies: ["PoolCore", "TestSupport"]),
        .testTarget(name: "DeltaTests", dependencies: ["Delta", "PoolCore", "TestSupport"]),
        .testTarget(name: "ThinBackupKitTests", dependencies: ["ThinBackupKit", "Delta", "PoolCore", "ReceiverRequest", "TestSupport"]),
    ]
)
