"""Test blocks for the shop ruleset (``data/shop.cvg``), shared by the runner's tests
and the ``converge test`` command's tests."""

PASSING = """
test "undercut wins when the margin allows" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 11.88)
  expect conflict Price(sku: "A1")
  expect no Alert()
  expect status converged
}
"""

FAILING = """
test "wrong price" {
  given Cost(sku: "A1", amount: 10.0)
  given Quote(sku: "A1", vendor: "acme", amount: 12.0)
  expect Price(sku: "A1", channel: web, amount: 12.5)
}
"""
