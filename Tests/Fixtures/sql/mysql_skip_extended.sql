/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: dsar
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Table structure for table `customers`
--

DROP TABLE IF EXISTS `customers`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `customers` (
  `id` int(11) NOT NULL,
  `email` text NOT NULL,
  `name` text DEFAULT NULL,
  `phone` text DEFAULT NULL,
  `notes` text DEFAULT NULL,
  `avatar` blob DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_email` (`email`(100))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `customers`
--

LOCK TABLES `customers` WRITE;
/*!40000 ALTER TABLE `customers` DISABLE KEYS */;
INSERT INTO `customers` VALUES (1,'bob@example.org','Bob Builder','+44 20 7946 0000',NULL,NULL);
INSERT INTO `customers` VALUES (2,'carol@example.net','Carol O\'Brien',NULL,'Prefers \"double quotes\"; it\'s fine',NULL);
INSERT INTO `customers` VALUES (3,'erin@example.com','Erin','','literal backslash-n: \\n and a real newline:\nend; also \");\nINSERT INTO customers VALUES (9, \'x\');',NULL);
INSERT INTO `customers` VALUES (4,'frank@example.com','Frank',NULL,'tab	here, CRLF\r\nand 100% \\% done','');
INSERT INTO `customers` VALUES (5,'Grace@Example.com','Grace Hopper',NULL,'$$ dollar $$ and $tag$ text',NULL);
INSERT INTO `customers` VALUES (6,'heidi@example.com','Heidi','0041 44 000 00 00','-- not a comment /* nor this */ # nor this',NULL);
INSERT INTO `customers` VALUES (7,'dave@example.com','Dave','555-0199','C:\\path\\to\\file.txt',NULL);
INSERT INTO `customers` VALUES (1042,'alice@example.com','Alice Liddell','+1 555 0100','VIP customer	gold tier\nsecond line','\0\'\\�');
INSERT INTO `customers` VALUES (10420,'malice@example.com','Mal Ice','+1 555 0142','not the subject; id 10420','�PNG\r\n\Z\n');
INSERT INTO `customers` VALUES (21042,'alice@example.com.evil.org','Zoë 日本語 😀',NULL,'look-alike domain',NULL);
/*!40000 ALTER TABLE `customers` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER customers_audit AFTER DELETE ON customers FOR EACH ROW
BEGIN
  INSERT INTO support_tickets (id, customer_email, body) VALUES (OLD.id + 100000, OLD.email, 'deleted; by trigger');
END 
*/;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Table structure for table `orders`
--

DROP TABLE IF EXISTS `orders`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `orders` (
  `id` int(11) NOT NULL,
  `customer_id` int(11) DEFAULT NULL,
  `total` decimal(10,2) DEFAULT NULL,
  `note` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_orders_customer` (`customer_id`),
  CONSTRAINT `fk_orders_customer` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `orders`
--

LOCK TABLES `orders` WRITE;
/*!40000 ALTER TABLE `orders` DISABLE KEYS */;
INSERT INTO `orders` VALUES (1,1042,19.99,'first order');
INSERT INTO `orders` VALUES (2,1042,5.00,NULL);
INSERT INTO `orders` VALUES (3,1042,-3.50,'refund for alice@example.com');
INSERT INTO `orders` VALUES (4,10420,100.00,'malice order');
INSERT INTO `orders` VALUES (5,21042,0.00,'look-alike');
INSERT INTO `orders` VALUES (6,1,12.34,'bob');
INSERT INTO `orders` VALUES (7,2,1042.00,'amount equals the subject id');
INSERT INTO `orders` VALUES (8,7,99999999.99,'max');
/*!40000 ALTER TABLE `orders` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `support_tickets`
--

DROP TABLE IF EXISTS `support_tickets`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `support_tickets` (
  `id` int(11) NOT NULL,
  `customer_email` text DEFAULT NULL,
  `body` text DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `support_tickets`
--

LOCK TABLES `support_tickets` WRITE;
/*!40000 ALTER TABLE `support_tickets` DISABLE KEYS */;
INSERT INTO `support_tickets` VALUES (1,'alice@example.com','Hi, I am alice@example.com, please delete my data.');
INSERT INTO `support_tickets` VALUES (2,'bob@example.org','Please forward this to ALICE@Example.COM asap');
INSERT INTO `support_tickets` VALUES (3,NULL,'Unsubscribe link: https://example.com/u?e=alice%40example.com');
INSERT INTO `support_tickets` VALUES (4,'malice@example.com','I am malice@example.com, not alice.');
INSERT INTO `support_tickets` VALUES (5,'zoe@example.jp','こんにちは Zoë 😀 — multi\nline	with tab');
INSERT INTO `support_tickets` VALUES (6,'dave@example.com','My order 10420 vs 21042, wrong customer?');
INSERT INTO `support_tickets` VALUES (7,'alice@example.com.evil.org','Spoofed sender');
INSERT INTO `support_tickets` VALUES (8,'carol@example.net','It\'s broken: C:\\Users\\carol\\');
/*!40000 ALTER TABLE `support_tickets` ENABLE KEYS */;
UNLOCK TABLES;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-11-29  2:30:43
