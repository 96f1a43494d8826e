package weft.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/** A Jackson JSON serde for plain Java classes, as Kafka Streams users write one. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper()
      .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  private Json() {}

  static <T> Serde<T> serde(Class<T> cls) {
    Serializer<T> ser = (topic, v) -> {
      if (v == null) {
        return null;
      }
      try {
        return MAPPER.writeValueAsBytes(v);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
    Deserializer<T> de = (topic, data) -> {
      if (data == null) {
        return null;
      }
      try {
        return MAPPER.readValue(data, cls);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
    return Serdes.serdeFrom(ser, de);
  }
}
