// Every number and string a peer controls, bounded (proto/README.md, "Limits"). The decoder checks
// these on the raw protobuf (PayloadLimits.swift) before libprotobuf-c allocates anything, and
// caps what libprotobuf-c may allocate for one message (ProtoDecode.swift, `DecodeBudget`).

/// The bounds of FlowerWire protocol version 2 (version 1 plus the secure-aggregation messages). All are properties of the protocol, not of a
/// server's configuration: a message that breaks one is malformed and ends the connection.
public enum WireLimits {
    /// Longest `Hello.client_id` / `Welcome.session_id`, in UTF-8 bytes (a DNS name is ≤ 253).
    public static let maxIdentifierBytes = 256
    /// Longest tensor name or config/metrics key, in UTF-8 bytes.
    public static let maxNameBytes = 1_024
    /// Longest free text (agent, status message, reasons, refusal message), in UTF-8 bytes.
    /// The Swift sender truncates longer text at a character boundary instead of failing.
    public static let maxTextBytes = 4_096
    /// Longest string value of a config/metrics `Scalar`, in UTF-8 bytes.
    public static let maxStringValueBytes = 65_536
    /// Longest `Challenge.nonce` / `Hello.auth_proof` (both are 32 bytes in version 1).
    public static let maxTokenBytes = 64
    /// Most config/metrics map entries in one message (all maps of the message together).
    public static let maxMapEntries = 4_096
    /// Most dimensions of one tensor's `shape` (numpy allows 64; models use ≤ 8).
    public static let maxShapeDims = 32
    /// Most tensors in one message (many tiny tensors cost far more memory than their bytes).
    public static let maxTensors = 65_536
    /// Most entries in `Hello.accept_compression`.
    public static let maxCompressions = 16
    /// Largest `round` / `rounds_completed`.
    public static let maxRound = Int(UInt32.max)
    /// Largest `num_examples`: 2^53, the largest count a double (FedAvg's weight) holds exactly.
    /// A server additionally fails results above its `--max-examples` (a policy, not a wire rule).
    public static let maxNumExamples = 1 << 53
    /// Largest `Hello.partition` (-1 means none).
    public static let maxPartition = Int(Int32.max)
    /// Longest `Reconnect.seconds` a client honours (one hour).
    public static let maxReconnectSeconds = 3_600
    /// Most entries in one secure-aggregation list (neighbour keys, encrypted shares, unmask
    /// indices, and the seed and key shares of one response together): 2 × `SecAggLimits.maxNumShares`.
    public static let maxSecAggEntries = 2 * 4_096
    /// An X25519 public key (`SecAggPublicKeys.encryption_key`, `mask_key`), exactly.
    public static let secAggKeyBytes = 32
    /// An encrypted share pair (`SecAggEncryptedShare.ciphertext`), exactly: nonce, 80 bytes, tag.
    public static let secAggCiphertextBytes = 108
    /// One share's field elements (`SecAggShare.values`), exactly: 5 little-endian uint64.
    public static let secAggShareBytes = 40
    /// Largest unmask index list (`seed_shares_of`, `key_shares_of`): 4,096 uint32.
    public static let maxSecAggIndexBytes = 4 * 4_096
    /// While unpacking one message, libprotobuf-c may allocate at most `decodeBudgetFactor` ×
    /// the payload size + `decodeBudgetSlack` + `decodeBudgetPerElement` × (tensors + map
    /// entries) bytes, each block counted with 16 bytes of malloc overhead; a message that needs
    /// more is refused. The per-element allowance pays for what one small tensor or map entry
    /// costs libprotobuf-c (~250 bytes, against a few bytes on the wire); as both are capped, it
    /// adds at most 22 MB, so the bound is 2× the payload + 23 MiB. Tensor data never counts:
    /// libprotobuf-c only sees a 4-byte token for it (TensorScanner). PayloadLimitsTests measures
    /// the honest extremes (4,096 metrics, 65,536 named tensors) and hostile frames against it.
    public static let decodeBudgetFactor = 2
    /// See `decodeBudgetFactor`.
    public static let decodeBudgetSlack = 1 << 20
    /// See `decodeBudgetFactor`.
    public static let decodeBudgetPerElement = 320
}

extension WireLimits {
    /// `text` as the Swift sender puts it in a free-text field: NUL replaced by U+FFFD, cut at a
    /// character boundary so its UTF-8 fits `maxTextBytes` (ending in "…" when cut).
    public static func sendableText(_ text: String) -> String {
        var clean = text
        if text.utf8.contains(0) {
            var scalars = String.UnicodeScalarView()
            for u in text.unicodeScalars { scalars.append(u == "\0" ? "\u{FFFD}" : u) }
            clean = String(scalars)
        }
        guard clean.utf8.count > maxTextBytes else { return clean }
        var out = ""
        var used = 0
        let ellipsis = "…"
        for c in clean {
            let n = c.utf8.count
            if used + n + ellipsis.utf8.count > maxTextBytes { break }
            out.append(c)
            used += n
        }
        return out + ellipsis
    }
}

/// Peer text made safe for one log line.
public enum PeerText {
    /// `text` with every control character (C0, DEL, C1), Unicode format character (bidi
    /// overrides, zero-width joiners, ...), line or paragraph separator and backslash escaped as
    /// `\n`, `\t`, `\\` or `\u{…}`, cut after `maxBytes` UTF-8 bytes of input with "… (N more bytes)".
    /// Everything a peer sends that reaches a log line or an error message goes through this, so
    /// a client cannot forge log lines (`\n`), hide text (bidi overrides) or flood a line.
    public static func escape(_ text: String, maxBytes: Int = WireLimits.maxTextBytes) -> String {
        var out = ""
        var used = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            if used + size > maxBytes {
                out += "… (\(text.utf8.count - used) more bytes)"
                return out
            }
            used += size
            out += escaped(scalar)
        }
        return out
    }

    /// Whether `text` is printed unchanged by `escape` (no control, format or separator
    /// characters, no backslash): the rule for identifiers such as `client_id`.
    public static func isPrintable(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { !needsEscape($0) }
    }

    static func needsEscape(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x20 || v == 0x7f || (0x80 ... 0x9f).contains(v) || s == "\\" { return true }
        switch s.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    private static func escaped(_ s: Unicode.Scalar) -> String {
        guard needsEscape(s) else { return String(Character(s)) }
        switch s {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        default: return "\\u{\(String(s.value, radix: 16))}"
        }
    }
}

extension WireLimits {
    /// Bytes libprotobuf-c may allocate while unpacking a payload of `payloadBytes` bytes that
    /// holds `elements` tensors and map entries (both already capped, so this cannot overflow
    /// for any payload a 32-bit frame length can carry).
    public static func decodeBudget(payloadBytes: Int, elements: Int = 0) -> Int {
        let bytes = min(max(payloadBytes, 0), Int(UInt32.max))
        let counted = min(max(elements, 0), maxTensors + maxMapEntries)
        return decodeBudgetFactor * bytes + decodeBudgetSlack + decodeBudgetPerElement * counted
    }
}
