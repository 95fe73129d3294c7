include $(sort $(wildcard $(BR2_EXTERNAL_CHATRELAY_PATH)/package/*/*.mk))
