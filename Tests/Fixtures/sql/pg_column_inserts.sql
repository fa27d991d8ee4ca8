--
-- PostgreSQL database dump
--

\restrict B2M2QdDfChbZnBqVAr0STBimoPgp53nH3gopsq9H9CBbv2G9YPf6BGiZUaFRWjD

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: log_ticket(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.log_ticket() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
BEGIN
  -- a function body with statements and quotes: it's "here"; $$ too
  INSERT INTO support_tickets (id, customer_email, body) VALUES (NEW.id + 100000, NEW.email, 'auto; created');
  RETURN NEW;
END
$_$;


ALTER FUNCTION public.log_ticket() OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    name text,
    phone text,
    notes text,
    avatar bytea
);


ALTER TABLE public.customers OWNER TO postgres;

--
-- Name: TABLE customers; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE public.customers IS 'Customer master; holds PII. Not an INSERT INTO customers VALUES (1);';


--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.orders (
    id integer NOT NULL,
    customer_id integer,
    total numeric(10,2),
    note text
);


ALTER TABLE public.orders OWNER TO postgres;

--
-- Name: support_tickets; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.support_tickets (
    id integer NOT NULL,
    customer_email text,
    body text
);


ALTER TABLE public.support_tickets OWNER TO postgres;

--
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: postgres
--

INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (1, 'bob@example.org', 'Bob Builder', '+44 20 7946 0000', NULL, NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (2, 'carol@example.net', 'Carol O''Brien', NULL, 'Prefers "double quotes"; it''s fine', NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (3, 'erin@example.com', 'Erin', '', 'literal backslash-n: \n and a real newline:
end; also ");
INSERT INTO customers VALUES (9, ''x'');', NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (4, 'frank@example.com', 'Frank', NULL, 'tab	here, CRLF
and 100% \% done', '\x');
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (5, 'Grace@Example.com', 'Grace Hopper', NULL, '$$ dollar $$ and $tag$ text', NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (6, 'heidi@example.com', 'Heidi', '0041 44 000 00 00', '-- not a comment /* nor this */ # nor this', NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (7, 'dave@example.com', 'Dave', '555-0199', 'C:\path\to\file.txt', NULL);
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (1042, 'alice@example.com', 'Alice Liddell', '+1 555 0100', 'VIP customer	gold tier
second line', '\x00275cff');
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (10420, 'malice@example.com', 'Mal Ice', '+1 555 0142', 'not the subject; id 10420', '\x89504e470d0a1a0a');
INSERT INTO public.customers (id, email, name, phone, notes, avatar) VALUES (21042, 'alice@example.com.evil.org', 'Zoë 日本語 😀', NULL, 'look-alike domain', NULL);


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: postgres
--

INSERT INTO public.orders (id, customer_id, total, note) VALUES (1, 1042, 19.99, 'first order');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (2, 1042, 5.00, NULL);
INSERT INTO public.orders (id, customer_id, total, note) VALUES (3, 1042, -3.50, 'refund for alice@example.com');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (4, 10420, 100.00, 'malice order');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (5, 21042, 0.00, 'look-alike');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (6, 1, 12.34, 'bob');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (7, 2, 1042.00, 'amount equals the subject id');
INSERT INTO public.orders (id, customer_id, total, note) VALUES (8, 7, 99999999.99, 'max');


--
-- Data for Name: support_tickets; Type: TABLE DATA; Schema: public; Owner: postgres
--

INSERT INTO public.support_tickets (id, customer_email, body) VALUES (1, 'alice@example.com', 'Hi, I am alice@example.com, please delete my data.');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (2, 'bob@example.org', 'Please forward this to ALICE@Example.COM asap');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (3, NULL, 'Unsubscribe link: https://example.com/u?e=alice%40example.com');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (4, 'malice@example.com', 'I am malice@example.com, not alice.');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (5, 'zoe@example.jp', 'こんにちは Zoë 😀 — multi
line	with tab');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (6, 'dave@example.com', 'My order 10420 vs 21042, wrong customer?');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (7, 'alice@example.com.evil.org', 'Spoofed sender');
INSERT INTO public.support_tickets (id, customer_email, body) VALUES (8, 'carol@example.net', 'It''s broken: C:\Users\carol\');


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: support_tickets support_tickets_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.support_tickets
    ADD CONSTRAINT support_tickets_pkey PRIMARY KEY (id);


--
-- Name: orders orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);


--
-- PostgreSQL database dump complete
--

\unrestrict B2M2QdDfChbZnBqVAr0STBimoPgp53nH3gopsq9H9CBbv2G9YPf6BGiZUaFRWjD

