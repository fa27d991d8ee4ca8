--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    name text,
    phone text
);

CREATE TABLE public.orders (
    id integer NOT NULL,
    customer_id integer NOT NULL,
    total numeric(10,2),
    note text
);

CREATE TABLE public.support_tickets (
    id integer NOT NULL,
    customer_email text,
    body text
);

COPY public.customers (id, email, name, phone) FROM stdin;
1042	alice@example.com	Alice Example	+44 20 7946 0000
1043	bob@example.org	Bob O'Brien	\N
10420	malice@example.com	Mallory	+44 20 7946 0009
21042	carol@example.net	Carol Zoë	\N
\.

COPY public.orders (id, customer_id, total, note) FROM stdin;
5001	1042	59.90	gift wrap\tplease
5002	1043	12.00	\N
5003	1042	7.50	deliver to the back door\nring twice
5004	10420	99.99	\N
\.

COPY public.support_tickets (id, customer_email, body) FROM stdin;
9001	alice@example.com	My parcel is late (order 5001)
9002	bob@example.org	Please forward my invoice to alice@example.com as well
9003	carol@example.net	Nothing to see: malice@example.com is not me
\.

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
--
