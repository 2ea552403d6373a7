// `flwr partition`'s summary for many partitions, on a hand-made histogram.
import Testing
import CIFARLoader

@Suite struct PartitionSummaryTests {
    @Test func summaryStatesTheSpreadsOfAHandHistogram() {
        // Sizes 1, 4, 5; classes present 1, 2, 1; largest class share 100%, 50%, 100%.
        let text = partitionSummary([[1, 0], [2, 2], [0, 5]])
        #expect(text == """
            3 partitions, 10 samples (one row per partition: --all)
            size: min 1, median 4, mean 3.3, max 5
            classes present: min 1, median 1, mean 1.3, max 2
            largest class share: min 50%, median 100%, mean 83.3%, max 100%
            class totals: c0 3, c1 7
            """)
    }
}
