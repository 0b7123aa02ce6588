/// In-node edits used by the B-tree write path (keys and values stay contiguous arrays, FORMAT.md §3.1).
extension Node {
    /// Raw bytes of values `r` (contiguous, `valueSize` each).
    func valuesRaw(_ r: Range<Int>) -> ArraySlice<UInt8> {
        bytes[valueOffset(r.lowerBound)..<valueOffset(r.upperBound)]
    }

    func keysRaw(_ r: Range<Int>) -> ArraySlice<UInt8> {
        bytes[(Node.headerSize + 8 * r.lowerBound)..<(Node.headerSize + 8 * r.upperBound)]
    }

    /// Replaces all entries with the given raw key and value bytes.
    mutating func setEntries(keys: some Collection<UInt8>, values: some Collection<UInt8>) {
        let n = keys.count / 8
        precondition(n <= maxEntries && values.count == n * valueSize)
        let ko = Node.headerSize, vo = valueOffset(0)
        setRaw(ko, keys)
        setRaw(vo, values)
        setCount(n)
    }

    private mutating func setRaw(_ at: Int, _ src: some Collection<UInt8>) {
        var i = at
        for b in src { setByte(i, b); i += 1 }
    }

    /// Inserts an entry at `i` (count must be below max).
    mutating func insertEntry(at i: Int, key: UInt64, value: some Collection<UInt8>) {
        let n = count
        precondition(n < maxEntries && value.count == valueSize)
        shift(from: Node.headerSize + 8 * i, to: Node.headerSize + 8 * (i + 1), length: 8 * (n - i))
        shift(from: valueOffset(i), to: valueOffset(i + 1), length: valueSize * (n - i))
        setKey(i, key)
        setValueBytes(i, value)
        setCount(n + 1)
    }

    /// Removes entry `i`.
    mutating func removeEntry(at i: Int) {
        let n = count
        shift(from: Node.headerSize + 8 * (i + 1), to: Node.headerSize + 8 * i, length: 8 * (n - i - 1))
        shift(from: valueOffset(i + 1), to: valueOffset(i), length: valueSize * (n - i - 1))
        setCount(n - 1)
    }
}
