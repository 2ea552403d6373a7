import FlowerCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

final class HistoryPlotTests: XCTestCase {
    /// Counts elements by name while checking the document is well-formed XML.
    private final class Census: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            counts[name, default: 0] += 1
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
    }

    private func parse(_ svg: String) throws -> Census {
        let parser = XMLParser(data: Data(svg.utf8))
        let census = Census()
        parser.delegate = census
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))\n\(svg)")
        return census
    }

    func testPlotIsWellFormedSVGWithOnePointPerRecordedValue() throws {
        let history = History(rounds: (1 ... 5).map {
            RoundRecord(round: $0, loss: 2 / Double($0), accuracy: $0 == 3 ? nil : 0.5 + 0.08 * Double($0),
                        fitClients: 10, failures: 0, seconds: 1)
        })
        let svg = HistoryPlot(title: "loss & accuracy <test>").svg(history)
        XCTAssertTrue(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let census = try parse(svg)
        XCTAssertEqual(census.counts["svg"], 1)
        XCTAssertEqual(census.counts["polyline"], 2, "one line for accuracy, one for loss")
        XCTAssertEqual(census.counts["circle"], 4 + 5, "round 3 has no accuracy")
        XCTAssertTrue(census.texts.joined().contains("loss & accuracy <test>"), "title escaped and restored")
    }

    func testEmptyAndSingleRoundHistoriesStillRender() throws {
        let empty = try parse(HistoryPlot().svg(History()))
        XCTAssertNil(empty.counts["polyline"])
        XCTAssertTrue(empty.texts.joined().contains("no accuracy recorded"))
        let one = try parse(HistoryPlot().svg(History(rounds: [
            RoundRecord(round: 1, loss: 0.3, accuracy: 0.9, fitClients: 1, failures: 0, seconds: 1),
        ])))
        XCTAssertEqual(one.counts["circle"], 2)
    }
}
