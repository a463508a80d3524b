ALTER TABLE stock_transactions
    ADD CONSTRAINT stock_transactions_warehouse_id_fkey FOREIGN KEY (warehouse_id) REFERENCES warehouses (id);
