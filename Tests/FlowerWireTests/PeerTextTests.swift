// Untrusted strings: NUL, length, UTF-8 and printable identifiers refused by the decoder
// (PayloadLimits.swift); free text escaped once (PeerText.escape) so log lines cannot be forged.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import Testing

struct PeerTextTests {
    static func hello(id: [UInt8], agent: [UInt8] = []) -> [UInt8] {
        Hostile.hello(PB.field(1, 1) + PB.bytes(2, id) + (agent.isEmpty ? [] : PB.bytes(6, agent)))
    }

    static func error(_ payload: [UInt8], client: Bool = true) -> String {
        decodeCounting(payload, client: client).0.map { "\($0)" } ?? "decoded"
    }

    @Test("a client_id with a newline, NUL, bidi override or backslash is refused")
    func unprintableClientIDsAreRefused() {
        let forged = Array("partition-1\n2026-11-30T00:00:00 info: client admin joined".utf8)
        #expect(Self.error(Self.hello(id: forged)).contains("hello.client_id at byte 4 (\"partition-1\\n2026-11-30T00:00:00 info: client admin joined\") contains control"))
        #expect(Self.error(Self.hello(id: Array("a\0b".utf8))).contains("hello.client_id at byte 4 contains a NUL byte (at offset 1); strings must not contain NUL"))
        #expect(Self.error(Self.hello(id: Array("evil\u{202E}gpj.exe".utf8))).contains("\\u{202e}"))
        #expect(Self.error(Self.hello(id: Array("dom\\user".utf8))).contains("contains control, format or backslash"))
        #expect(Self.error(Self.hello(id: [0x63, 0xff, 0xfe])).contains("hello.client_id at byte 4 is not valid UTF-8"))
    }

    @Test("a 60,000-character client_id is refused without echoing it")
    func longIdentifiersAreRefused() {
        let message = Self.error(Self.hello(id: [UInt8](repeating: 0x61, count: 60_000)))
        #expect(message.contains("hello.client_id at byte 6 is 60000 bytes; at most 256 are allowed"), "\(message.prefix(300))")
        #expect(message.count < 400)
        #expect(Self.error(Self.hello(id: [UInt8](repeating: 0x61, count: 256))) == "decoded")
        #expect(Self.error(Self.hello(id: [UInt8](repeating: 0x61, count: 257))).contains("is 257 bytes"))
    }

    @Test("NUL is refused in every string field", arguments: [
        ("agent", hello(id: [0x63], agent: [0x61, 0, 0x62]), true),
        ("Goodbye.reason", PB.bytes(5, PB.bytes(1, [0x61, 0])), true),
        ("Status.message", Hostile.fitRes(PB.bytes(1, PB.bytes(2, [0, 0x61]))), true),
        ("metrics key", Hostile.fitRes(PB.bytes(5, Hostile.entry(key: "a\0", value: PB.field(3, 1)))), true),
        ("string value", PB.bytes(4, PB.bytes(1, Hostile.entry(key: "k", value: PB.bytes(4, [0x61, 0])))), false),
        ("tensor name", PB.fitIns([PB.tensor(name: "w\0", shape: [1], data: [0, 0, 0, 0])]), false),
        ("Refusal.message", PB.bytes(3, PB.bytes(2, [0])), false),
        ("Welcome.session_id", PB.bytes(2, PB.bytes(2, [0x73, 0])), false),
    ])
    func nulIsRefusedEverywhere(_ field: String, _ payload: [UInt8], _ client: Bool) {
        let message = Self.error(payload, client: client)
        #expect(message.contains("contains a NUL byte"), "\(field): \(message)")
    }

    @Test("string lengths are bounded per kind")
    func lengthsAreBounded() {
        let text = [UInt8](repeating: 0x61, count: WireLimits.maxTextBytes + 1)
        #expect(Self.error(PB.bytes(5, PB.bytes(1, text))).contains("ClientMessage.goodbye.reason at byte 3 is 4097 bytes; at most 4096"))
        let name = String(repeating: "n", count: WireLimits.maxNameBytes + 1)
        #expect(Self.error(PB.fitIns([PB.tensor(name: name, shape: [1], data: [0, 0, 0, 0])]), client: false).contains("tensors.name at byte 11 is 1025 bytes"))
        let value = PB.bytes(4, [UInt8](repeating: 0x61, count: WireLimits.maxStringValueBytes + 1))
        #expect(Self.error(PB.bytes(4, PB.bytes(1, Hostile.entry(key: "k", value: value))), client: false).contains("config.value.string_value at byte 15 is 65537 bytes"))
        #expect(Self.error(Hostile.hello(PB.bytes(5, [UInt8](repeating: 1, count: 65)))).contains("auth_proof at byte 2 is 65 bytes; at most 64"))
    }

    @Test("free text is escaped once at decode, so a log line stays one line")
    func freeTextIsEscaped() throws {
        let agent = Array("flwr 1.0\nERROR server compromised\u{1b}[2J\u{202E}".utf8)
        guard case .hello(let h) = try WireDecoder.clientMessage(Self.hello(id: Array("c1".utf8), agent: agent)) else { Issue.record("not Hello"); return }
        #expect(h.agent == "flwr 1.0\\nERROR server compromised\\u{1b}[2J\\u{202e}")
        #expect(!h.agent.contains("\n"))
        guard case .goodbye(let why) = try WireDecoder.clientMessage(PB.bytes(5, PB.bytes(1, Array("a\\b\r\t".utf8)))) else { Issue.record("not Goodbye"); return }
        #expect(why == "a\\\\b\\r\\t")
        // Status.message (shown in the server's log) too.
        let failed = Hostile.fitRes(PB.bytes(1, PB.field(1, 1) + PB.bytes(2, Array("oom\nfake line".utf8))))
        guard case .fitRes(let res) = try WireDecoder.clientMessage(failed) else { Issue.record("not FitRes"); return }
        #expect(res.status.message == "oom\\nfake line" && res.status.code == .fitFailed)
    }

    @Test("PeerText.escape: controls, separators, truncation at a character boundary")
    func escapeHelper() {
        #expect(PeerText.escape("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓")
        #expect(PeerText.escape("a\u{0}b\u{7f}c\u{85}d\u{2028}e\u{200B}") == "a\\u{0}b\\u{7f}c\\u{85}d\\u{2028}e\\u{200b}")
        #expect(PeerText.escape(String(repeating: "é", count: 10), maxBytes: 5) == "éé… (16 more bytes)")
        #expect(PeerText.escape(String(repeating: "x", count: 60_000)).utf8.count < 4_200)
        #expect(PeerText.isPrintable("partition-3.flwr-client-7f9c") && !PeerText.isPrintable("a\tb"))
    }
}
