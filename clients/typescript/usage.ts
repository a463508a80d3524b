// A small integrator's view of the API, type-checked (`tsc --noEmit`) against
// the types openapi-typescript generates from /openapi.json (scripts/contract.sh).
// If an operation, a field or a status changes shape, this stops compiling.
import type { components, operations, paths } from "./generated/api";

type Schemas = components["schemas"];
type Json<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { "application/json; charset=utf-8": infer B } } };
}
  ? B
  : never;
type ProblemOf<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { "application/problem+json": infer B } } };
}
  ? B
  : never;

const base = "http://127.0.0.1:8080";

async function call<T>(path: string, init: RequestInit): Promise<T> {
  const res = await fetch(base + path, init);
  return (await res.json()) as T;
}

export async function issueOrExplain(token: string, productId: string, warehouseId: string) {
  const body: Schemas["IssueRequest"] = {
    product_id: productId,
    warehouse_id: warehouseId,
    quantity: 3,
    reference: "SO-1001",
    note: null,
  };
  const res = await fetch(base + "/api/v1/stock/issue", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
    body: JSON.stringify(body),
  });
  if (res.status === 409) {
    const problem = (await res.json()) as ProblemOf<operations["issueStock"], 409>;
    const available: number | null | undefined = problem.available;
    return `only ${available ?? 0} available (${problem.type})`;
  }
  const result = (await res.json()) as Json<operations["issueStock"], 201>;
  const level: Schemas["Level"] = result.levels[0];
  return `left: ${level.quantity}`;
}

export async function firstPage(token: string): Promise<string[]> {
  type Page = Json<operations["listProducts"], 200>;
  const page = await call<Page>("/api/v1/products?limit=10", {
    headers: { Authorization: `Bearer ${token}` },
  });
  // next_cursor is declared nullable: null on the last page.
  const next: string | null | undefined = page.next_cursor;
  const prices: string[] = page.items.map((p: Schemas["Product"]) => `${p.sku}: ${p.price}`);
  return next ? [...prices, "..."] : prices;
}

// Every documented operation exists under its path.
export type ReceivePath = paths["/api/v1/stock/receive"]["post"];
export type Me = Json<operations["getCurrentUser"], 200>;
