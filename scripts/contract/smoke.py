"""A smoke flow through the Python client generated from /openapi.json.

Run by scripts/contract.sh: usage `smoke.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD`.
It uses only the generated, typed functions and models, as an integrator would:
log in, create a warehouse and a product, receive, issue, see an over-issue
refused with a typed 409 problem, import a CSV as a multipart upload, and list
the transactions. Any surprise fails the run.
"""

import io
import sys
import uuid

from inventory_api_client import AuthenticatedClient, Client
from inventory_api_client.api.auth import login
from inventory_api_client.api.products import create_product, import_products
from inventory_api_client.api.stock import issue_stock, receive_stock
from inventory_api_client.api.transactions import list_transactions
from inventory_api_client.api.warehouses import create_warehouse
from inventory_api_client.models import (
    CreateProduct,
    CreateWarehouse,
    ImportProductsFilesBody,
    ImportSummary,
    IssueRequest,
    LoginRequest,
    MovementResult,
    PageStockTransaction,
    Problem,
    Product,
    ReceiveRequest,
    TokenPair,
    Warehouse,
)
from inventory_api_client.types import File


def expect(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"smoke: {what}: expected {kind.__name__}, got {value!r}")
    return value


def main(base: str, email: str, password: str) -> None:
    anonymous = Client(base_url=base, raise_on_unexpected_status=True)
    tokens = expect(
        login.sync(client=anonymous, body=LoginRequest(email=email, password=password)),
        TokenPair,
        "login",
    )
    client = AuthenticatedClient(
        base_url=base, token=tokens.access_token, raise_on_unexpected_status=True
    )
    suffix = uuid.uuid4().hex[:8].upper()

    warehouse = expect(
        create_warehouse.sync(
            client=client, body=CreateWarehouse(code=f"SMK{suffix}", name="Smoke test")
        ),
        Warehouse,
        "create warehouse",
    )
    product = expect(
        create_product.sync(
            client=client,
            body=CreateProduct(sku=f"SMOKE-{suffix}", name="Smoke widget", price="2.5"),
        ),
        Product,
        "create product",
    )
    assert product.price == "2.5000", f"money has a fixed scale, got {product.price!r}"

    received = expect(
        receive_stock.sync(
            client=client,
            body=ReceiveRequest(
                product_id=product.id, warehouse_id=warehouse.id, quantity=10, unit_cost="1.25"
            ),
        ),
        MovementResult,
        "receive",
    )
    assert received.levels[0].quantity == 10, received
    issued = expect(
        issue_stock.sync(
            client=client,
            body=IssueRequest(product_id=product.id, warehouse_id=warehouse.id, quantity=4),
        ),
        MovementResult,
        "issue",
    )
    assert issued.levels[0].quantity == 6, issued

    refused = issue_stock.sync_detailed(
        client=client,
        body=IssueRequest(product_id=product.id, warehouse_id=warehouse.id, quantity=7),
    )
    assert refused.status_code == 409, refused
    problem = expect(refused.parsed, Problem, "over-issue")
    assert problem.type_ == "/problems/insufficient-stock", problem
    assert problem.available == 6, problem

    csv = f"sku,name,price\nSMOKE-CSV-{suffix},Imported by form,3.5\n".encode()
    summary = expect(
        import_products.sync(
            client=client,
            body=ImportProductsFilesBody(
                file=File(payload=io.BytesIO(csv), file_name="products.csv", mime_type="text/csv")
            ),
        ),
        ImportSummary,
        "multipart import",
    )
    assert summary.created == 1, summary
    # The same CSV as a text/csv body still works (v1 clients send it so).
    csv = f"sku,name,price\nSMOKE-CSV-{suffix},Imported as text/csv,4\n".encode()
    summary = expect(
        import_products.sync(client=client, body=File(payload=io.BytesIO(csv))),
        ImportSummary,
        "text/csv import",
    )
    assert summary.updated == 1, summary

    page = expect(
        list_transactions.sync(client=client, product_id=product.id),
        PageStockTransaction,
        "list transactions",
    )
    kinds = sorted(str(t.kind) for t in page.items)
    assert len(page.items) == 2 and page.next_cursor is None, page
    print(f"smoke: ok ({len(page.items)} transactions: {', '.join(kinds)})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
