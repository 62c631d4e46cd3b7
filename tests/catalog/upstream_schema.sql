-- The sparecores-crawler 0.10 schema (alembic 37c49fd74cce), as in a published dump.
-- Used by the tests to build small upstream catalogs.

CREATE TABLE country (
	country_id VARCHAR NOT NULL, 
	continent VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	PRIMARY KEY (country_id)
);

CREATE TABLE "compliance_framework" (
	compliance_framework_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	abbreviation VARCHAR, 
	description VARCHAR, 
	logo VARCHAR, 
	homepage VARCHAR, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_compliance_framework PRIMARY KEY (compliance_framework_id)
);

CREATE TABLE "vendor" (
	vendor_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	logo VARCHAR, 
	homepage VARCHAR, 
	country_id VARCHAR NOT NULL, 
	state VARCHAR, 
	city VARCHAR, 
	address_line VARCHAR, 
	zip_code VARCHAR, 
	founding_year INTEGER NOT NULL, 
	status_page VARCHAR, 
	stopped_server_charged BOOLEAN, 
	billing_increment_seconds INTEGER, 
	minimum_billing_seconds INTEGER, 
	billing_comment VARCHAR, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_vendor PRIMARY KEY (vendor_id), 
	CONSTRAINT fk_vendor_country_id_country FOREIGN KEY(country_id) REFERENCES country (country_id)
);

CREATE TABLE vendor_compliance_link (
	vendor_id VARCHAR NOT NULL, 
	compliance_framework_id VARCHAR NOT NULL, 
	comment VARCHAR, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_vendor_compliance_link PRIMARY KEY (vendor_id, compliance_framework_id), 
	CONSTRAINT fk_vendor_compliance_link_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id), 
	CONSTRAINT fk_vendor_compliance_link_compliance_framework_id_compliance_framework FOREIGN KEY(compliance_framework_id) REFERENCES compliance_framework (compliance_framework_id)
);

CREATE TABLE region (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	api_reference VARCHAR NOT NULL, 
	display_name VARCHAR NOT NULL, 
	aliases JSON NOT NULL, 
	country_id VARCHAR NOT NULL, 
	state VARCHAR, 
	city VARCHAR, 
	address_line VARCHAR, 
	zip_code VARCHAR, 
	lon FLOAT, 
	lat FLOAT, 
	founding_year INTEGER, 
	green_energy BOOLEAN, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_region PRIMARY KEY (vendor_id, region_id), 
	CONSTRAINT fk_region_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id), 
	CONSTRAINT fk_region_country_id_country FOREIGN KEY(country_id) REFERENCES country (country_id)
);

CREATE TABLE "zone" (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	zone_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	api_reference VARCHAR NOT NULL, 
	display_name VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_zone PRIMARY KEY (vendor_id, region_id, zone_id), 
	CONSTRAINT fk_zone_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_zone_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE "storage" (
	vendor_id VARCHAR NOT NULL, 
	storage_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	description VARCHAR, 
	storage_type VARCHAR(8) NOT NULL, 
	max_iops INTEGER, 
	max_throughput INTEGER, 
	min_size INTEGER, 
	max_size INTEGER, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_storage PRIMARY KEY (vendor_id, storage_id), 
	CONSTRAINT fk_storage_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE "server" (
	vendor_id VARCHAR NOT NULL, 
	server_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	api_reference VARCHAR NOT NULL, 
	api_reference_object JSON, 
	display_name VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	family VARCHAR, 
	series VARCHAR, 
	vcpus INTEGER NOT NULL, 
	hypervisor VARCHAR, 
	cpu_allocation VARCHAR(9) NOT NULL, 
	cpu_cores INTEGER, 
	cpu_speed FLOAT, 
	cpu_architecture VARCHAR(10) NOT NULL, 
	cpu_manufacturer VARCHAR, 
	cpu_family VARCHAR, 
	cpu_model VARCHAR, 
	cpu_l1d_cache INTEGER, 
	cpu_l1d_cache_total INTEGER, 
	cpu_l1i_cache INTEGER, 
	cpu_l1i_cache_total INTEGER, 
	cpu_l2_cache INTEGER, 
	cpu_l2_cache_total INTEGER, 
	cpu_l3_cache INTEGER, 
	cpu_l3_cache_total INTEGER, 
	cpu_flags JSON NOT NULL, 
	cpus JSON NOT NULL, 
	ecpus FLOAT, 
	scalability FLOAT, 
	hw_virt BOOLEAN, 
	memory_amount INTEGER NOT NULL, 
	memory_amount_actual INTEGER, 
	memory_generation VARCHAR(4), 
	memory_speed INTEGER, 
	memory_ecc BOOLEAN, 
	accelerator_count FLOAT NOT NULL, 
	accelerator_memory_min INTEGER, 
	accelerator_memory_total INTEGER, 
	accelerator_type VARCHAR(3), 
	accelerator_manufacturer VARCHAR, 
	accelerator_family VARCHAR, 
	accelerator_model VARCHAR, 
	accelerators JSON NOT NULL, 
	storage_size INTEGER NOT NULL, 
	storage_type VARCHAR(8), 
	storages JSON NOT NULL, 
	compatible_storage_ids JSON, 
	network_speed_baseline FLOAT, 
	network_speed_max FLOAT, 
	network_storage_speed_baseline FLOAT, 
	network_storage_speed_max FLOAT, 
	inbound_traffic FLOAT NOT NULL, 
	outbound_traffic FLOAT NOT NULL, 
	ipv4 INTEGER NOT NULL, 
	average_time_to_start FLOAT, 
	status VARCHAR(22) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_server PRIMARY KEY (vendor_id, server_id), 
	CONSTRAINT fk_server_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE server_description (
	vendor_id VARCHAR NOT NULL, 
	server_id VARCHAR NOT NULL, 
	page JSON NOT NULL, 
	description VARCHAR NOT NULL, 
	og_description VARCHAR NOT NULL, 
	meta_description VARCHAR NOT NULL, 
	tagline VARCHAR NOT NULL, 
	bullet_points JSON NOT NULL, 
	categories JSON NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_server_description PRIMARY KEY (vendor_id, server_id), 
	CONSTRAINT fk_server_description_vendor_id_server FOREIGN KEY(vendor_id, server_id) REFERENCES server (vendor_id, server_id), 
	CONSTRAINT fk_server_description_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE server_price (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	zone_id VARCHAR NOT NULL, 
	server_id VARCHAR NOT NULL, 
	operating_system VARCHAR NOT NULL, 
	allocation VARCHAR(8) NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_server_price PRIMARY KEY (vendor_id, region_id, zone_id, server_id, allocation), 
	CONSTRAINT fk_server_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_server_price_vendor_id_zone FOREIGN KEY(vendor_id, region_id, zone_id) REFERENCES zone (vendor_id, region_id, zone_id), 
	CONSTRAINT fk_server_price_vendor_id_server FOREIGN KEY(vendor_id, server_id) REFERENCES server (vendor_id, server_id), 
	CONSTRAINT fk_server_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE storage_price (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	storage_id VARCHAR NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_storage_price PRIMARY KEY (vendor_id, region_id, storage_id), 
	CONSTRAINT fk_storage_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_storage_price_vendor_id_storage FOREIGN KEY(vendor_id, storage_id) REFERENCES storage (vendor_id, storage_id), 
	CONSTRAINT fk_storage_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE traffic_price (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	direction VARCHAR(3) NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_traffic_price PRIMARY KEY (vendor_id, region_id, direction), 
	CONSTRAINT fk_traffic_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_traffic_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE ipv4_price (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_ipv4_price PRIMARY KEY (vendor_id, region_id), 
	CONSTRAINT fk_ipv4_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_ipv4_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE "benchmark" (
	benchmark_id VARCHAR NOT NULL, 
	category VARCHAR, 
	subcategory VARCHAR, 
	source JSON, 
	name VARCHAR NOT NULL, 
	description VARCHAR, 
	note VARCHAR, 
	framework VARCHAR NOT NULL, 
	config_fields JSON NOT NULL, 
	environment_fields JSON DEFAULT '{}' NOT NULL, 
	measurement VARCHAR, 
	unit VARCHAR, 
	higher_is_better BOOLEAN NOT NULL, 
	status VARCHAR(22) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_benchmark PRIMARY KEY (benchmark_id)
);

CREATE TABLE "benchmark_score" (
	vendor_id VARCHAR NOT NULL, 
	benchmark_id VARCHAR NOT NULL, 
	resource_type VARCHAR(8) NOT NULL, 
	resource_id VARCHAR NOT NULL, 
	config JSON NOT NULL, 
	framework_version VARCHAR, 
	environment JSON, 
	score FLOAT NOT NULL, 
	score_breakdown JSON, 
	note VARCHAR, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_benchmark_score PRIMARY KEY (vendor_id, benchmark_id, resource_type, resource_id, config), 
	CONSTRAINT fk_benchmark_score_benchmark_id_benchmark FOREIGN KEY(benchmark_id) REFERENCES benchmark (benchmark_id), 
	CONSTRAINT fk_benchmark_score_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE database_storage (
	vendor_id VARCHAR NOT NULL, 
	database_storage_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	description VARCHAR, 
	scope VARCHAR(6) NOT NULL, 
	redundancy VARCHAR, 
	min_size INTEGER, 
	max_size INTEGER, 
	max_iops INTEGER, 
	max_throughput INTEGER, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_database_storage PRIMARY KEY (vendor_id, database_storage_id), 
	CONSTRAINT fk_database_storage_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE "database" (
	vendor_id VARCHAR NOT NULL, 
	database_id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	api_reference VARCHAR NOT NULL, 
	api_reference_object JSON, 
	display_name VARCHAR NOT NULL, 
	description VARCHAR, 
	family VARCHAR, 
	series VARCHAR, 
	server_id VARCHAR, 
	vcpus INTEGER, 
	memory_amount INTEGER, 
	engine VARCHAR(10), 
	wire_protocol VARCHAR(10), 
	engine_versions JSON NOT NULL, 
	auto_upgrade_versions BOOLEAN, 
	ha JSON NOT NULL, 
	ha_strategy JSON NOT NULL, 
	max_read_replicas INTEGER, 
	custom_config BOOLEAN, 
	custom_extensions BOOLEAN, 
	storage_size INTEGER, 
	storage_extra_min INTEGER, 
	storage_extra_max INTEGER, 
	storage_extra_autosize BOOLEAN, 
	compatible_storage_ids JSON, 
	disk_encryption BOOLEAN, 
	scheduled_backups BOOLEAN, 
	continuous_backups INTEGER, 
	connection_pool BOOLEAN, 
	system_monitoring BOOLEAN, 
	database_monitoring BOOLEAN, 
	autotuning_advice BOOLEAN, 
	autotuning_apply BOOLEAN, 
	sla FLOAT, 
	security_features JSON NOT NULL, 
	status VARCHAR(22) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_database PRIMARY KEY (vendor_id, database_id), 
	CONSTRAINT fk_database_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id)
);

CREATE TABLE "database_price" (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	database_id VARCHAR NOT NULL, 
	allocation VARCHAR(8) NOT NULL, 
	ha VARCHAR(12) DEFAULT 'NONE' NOT NULL, 
	ha_strategy VARCHAR(16) DEFAULT 'NONE' NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_database_price PRIMARY KEY (vendor_id, region_id, database_id, allocation, ha, ha_strategy), 
	CONSTRAINT fk_database_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id), 
	CONSTRAINT fk_database_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_database_price_vendor_id_database FOREIGN KEY(vendor_id, database_id) REFERENCES "database" (vendor_id, database_id)
);

CREATE TABLE database_storage_price (
	vendor_id VARCHAR NOT NULL, 
	region_id VARCHAR NOT NULL, 
	database_storage_id VARCHAR NOT NULL, 
	unit VARCHAR(8) NOT NULL, 
	price FLOAT NOT NULL, 
	price_upfront FLOAT NOT NULL, 
	price_tiered JSON NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR(8) NOT NULL, 
	observed_at DATETIME NOT NULL, 
	CONSTRAINT pk_database_storage_price PRIMARY KEY (vendor_id, region_id, database_storage_id), 
	CONSTRAINT fk_database_storage_price_vendor_id_vendor FOREIGN KEY(vendor_id) REFERENCES vendor (vendor_id), 
	CONSTRAINT fk_database_storage_price_vendor_id_region FOREIGN KEY(vendor_id, region_id) REFERENCES region (vendor_id, region_id), 
	CONSTRAINT fk_database_storage_price_vendor_id_database_storage FOREIGN KEY(vendor_id, database_storage_id) REFERENCES database_storage (vendor_id, database_storage_id)
);

CREATE TABLE zzz_alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT zzz_alembic_version_pkc PRIMARY KEY (version_num)
);
