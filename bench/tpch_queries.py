"""TPC-H Q1, Q3, Q5, Q6 and Q10, adapted to Veil's rules; the same text runs on raw DuckDB.

The adaptations, each forced by a rule rather than chosen:
- aggregates take plain columns, so `sum(l_extendedprice * (1 - l_discount))` reads the
  precomputed `l_revenue` (and likewise `l_charge`, `l_discount_amount`);
- measures may not be filtered, so Q6 filters on the dimension copies `l_disc` and `l_qty`;
- no released group may be one customer, so Q3 groups by order date and priority instead of
  by order, and Q10 by the customer's nation instead of by customer;
- nations are carried onto the tables at generation, so Q5 needs no nation or region table;
- line items carry their order's customer, and joins also match it (`l_custkey = o_custkey`,
  true of every row): under differential privacy every joined row must belong to one
  customer, which only a join on the privacy unit shows.
"""

from __future__ import annotations

QUERIES = {
    "q1": """
SELECT l_returnflag, l_linestatus, SUM(l_quantity) AS sum_qty,
       SUM(l_extendedprice) AS sum_base_price, SUM(l_revenue) AS sum_disc_price,
       SUM(l_charge) AS sum_charge, AVG(l_quantity) AS avg_qty,
       AVG(l_extendedprice) AS avg_price, AVG(l_discount) AS avg_disc, COUNT(*) AS count_order
FROM tpch.lineitem
WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
""",
    "q3": """
SELECT o.o_orderdate, o.o_shippriority, SUM(l.l_revenue) AS revenue
FROM tpch.customer c
JOIN tpch.orders o ON c.c_custkey = o.o_custkey
JOIN tpch.lineitem l ON l.l_orderkey = o.o_orderkey AND l.l_custkey = o.o_custkey
WHERE c.c_mktsegment = 'BUILDING' AND o.o_orderdate < DATE '1995-03-15'
  AND l.l_shipdate > DATE '1995-03-15'
GROUP BY o.o_orderdate, o.o_shippriority
ORDER BY revenue DESC, o.o_orderdate
LIMIT 10
""",
    "q5": """
SELECT c.c_nation, SUM(l.l_revenue) AS revenue
FROM tpch.customer c
JOIN tpch.orders o ON c.c_custkey = o.o_custkey
JOIN tpch.lineitem l ON l.l_orderkey = o.o_orderkey AND l.l_custkey = o.o_custkey
WHERE l.l_suppnation = c.c_nation AND c.c_region = 'ASIA'
  AND o.o_orderdate >= DATE '1994-01-01' AND o.o_orderdate < DATE '1995-01-01'
GROUP BY c.c_nation
ORDER BY revenue DESC
""",
    "q6": """
SELECT SUM(l_discount_amount) AS revenue
FROM tpch.lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
  AND l_disc BETWEEN 0.05 AND 0.07 AND l_qty < 24
""",
    "q10": """
SELECT c.c_nation, SUM(l.l_revenue) AS revenue, COUNT(DISTINCT c.c_custkey) AS customers
FROM tpch.customer c
JOIN tpch.orders o ON c.c_custkey = o.o_custkey
JOIN tpch.lineitem l ON l.l_orderkey = o.o_orderkey AND l.l_custkey = o.o_custkey
WHERE o.o_orderdate >= DATE '1993-10-01' AND o.o_orderdate < DATE '1994-01-01'
  AND l.l_returnflag = 'R'
GROUP BY c.c_nation
ORDER BY revenue DESC
LIMIT 20
""",
}
